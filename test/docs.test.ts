/**
 * The project's documents are its own: every link in its Markdown files
 * that is not a web address names a file inside the repository.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO } from './fixtures';

const DOCS = fs.readdirSync(REPO).filter((n) => n.endsWith('.md'));

/** The targets of `[text](target)` links in Markdown text, outside code blocks. */
function linkTargets(markdown: string): string[] {
  const prose = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\[[^\]\n]*\]\(([^)\s]+)\)/g)].map((m) => m[1] as string);
}

describe('docs: links stay inside the repository', () => {
  it('the repository has its README and its architecture document', () => {
    assert.ok(DOCS.includes('README.md') && DOCS.includes('ARCHITECTURE.md'), JSON.stringify(DOCS));
    assert.ok(linkTargets(fs.readFileSync(path.join(REPO, 'README.md'), 'utf8')).includes('ARCHITECTURE.md'));
  });

  for (const doc of DOCS) {
    it(`every relative link of ${doc} names a file in the repository`, () => {
      const targets = linkTargets(fs.readFileSync(path.join(REPO, doc), 'utf8')).filter((t) => !/^[a-z]+:/i.test(t) && !t.startsWith('#'));
      for (const target of targets) {
        const file = path.resolve(REPO, target.split('#')[0] as string);
        assert.ok(file === REPO || file.startsWith(REPO + path.sep), `${doc} links ${target}, outside the repository`);
        assert.ok(fs.existsSync(file), `${doc} links ${target}, which does not exist`);
      }
    });
  }
});
