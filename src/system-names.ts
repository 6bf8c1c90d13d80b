/**
 * Which libraries a Windows or macOS system provides, decided by name: a
 * bundle for those systems is packed on another machine, where nothing can
 * be looked up, so `pack` tells a system library (left external, as the
 * loader will find it) from a library that was probably forgotten.
 */

// HKLM\System\CurrentControlSet\Control\Session Manager\KnownDLLs on Windows
// 10 and 11, with ntdll.dll, which is always loaded: the loader maps these
// from \KnownDlls and never searches for them.
const KNOWN_DLLS = [
  'advapi32', 'clbcatq', 'combase', 'comdlg32', 'coml2', 'difxapi', 'gdi32', 'gdiplus', 'imagehlp', 'imm32', 'kernel32', 'msctf', 'msvcrt', 'normaliz',
  'nsi', 'ole32', 'oleaut32', 'psapi', 'rpcrt4', 'sechost', 'setupapi', 'shcore', 'shell32', 'shlwapi', 'user32', 'wldap32', 'wow64', 'wow64win', 'ws2_32', 'ntdll',
];

// Other DLLs every Windows 10 and 11 installation has in System32, among
// those native addons import (graphics, networking, cryptography, the
// universal C runtime). Drivers' DLLs (nvcuda.dll, OpenCL.dll) are not here:
// a machine may lack them.
const SYSTEM32 = [
  'kernelbase', 'ucrtbase', 'msvcp_win', 'bcrypt', 'bcryptprimitives', 'crypt32', 'ncrypt', 'secur32', 'sspicli', 'wintrust', 'cfgmgr32', 'dbghelp', 'dbgeng',
  'version', 'userenv', 'powrprof', 'winmm', 'uxtheme', 'dwmapi', 'comctl32', 'winspool.drv', 'propsys', 'shfolder', 'mpr', 'netapi32', 'iphlpapi', 'dnsapi',
  'mswsock', 'wsock32', 'winhttp', 'wininet', 'urlmon', 'credui', 'dxgi', 'd3d9', 'd3d11', 'd3d12', 'd3dcompiler_47', 'dxcore', 'opengl32', 'glu32', 'dwrite',
  'd2d1', 'windowscodecs', 'mf', 'mfplat', 'mfreadwrite', 'ntdll', 'authz', 'wtsapi32', 'setupapi', 'hid', 'winusb', 'avrt', 'mmdevapi', 'ksuser', 'dsound',
  'xinput1_4', 'pdh', 'wevtapi', 'tdh', 'rstrtmgr', 'msi', 'cabinet', 'oleacc', 'shdocvw', 'winsta', 'ntdsapi', 'activeds', 'taskschd', 'fltlib', 'virtdisk',
];

const WINDOWS = new Set([...KNOWN_DLLS, ...SYSTEM32].map((n) => (n.includes('.') ? n : `${n}.dll`)));

/**
 * Why a Windows system provides the DLL `name` (matched in any case), or
 * null when it does not: a KnownDLL, an API set (`api-ms-win-*`,
 * `ext-ms-*`, resolved by the loader to system DLLs), a System32 DLL, the
 * Visual C++ runtime (`msvcp140*.dll`, `vcruntime140*.dll`: installed by the
 * Visual C++ redistributable, which Node.js and Electron installers carry),
 * or the host program (`node.exe`, which node-gyp's delay-load hook maps to
 * the running node or Electron).
 *
 * @example
 * windowsSystemDll('KERNEL32.dll')                   // 'a KnownDLL'
 * windowsSystemDll('api-ms-win-crt-heap-l1-1-0.dll') // 'an API set'
 * windowsSystemDll('ggml-base.dll')                  // null
 */
export function windowsSystemDll(name: string): string | null {
  const n = name.toLowerCase();
  if (/^(api|ext)-ms-win-/.test(n)) return 'an API set';
  if (KNOWN_DLLS.includes(n.replace(/\.dll$/, '')) && n.endsWith('.dll')) return 'a KnownDLL';
  if (WINDOWS.has(n)) return 'a Windows system DLL';
  if (/^(msvcp140(_[0-9a-z_]+)?|vcruntime140(_1)?|concrt140|vcomp140|vccorlib140)\.dll$/.test(n)) return 'the Visual C++ runtime';
  if (n === 'node.exe' || n === 'node.dll' || n === 'iojs.exe') return 'the host program (node.exe or Electron, through the delay-load hook of node-gyp)';
  return null;
}

/**
 * Why a macOS system provides the library at install name `name`, or null:
 * what is under /usr/lib (libSystem, libc++, libobjc, libz, …) and under
 * /System (the frameworks) comes with every macOS, in the shared cache.
 * Names relative to `@rpath`, `@loader_path` or `@executable_path`, and
 * other absolute paths (/opt/homebrew, /usr/local), are the application's.
 *
 * @example
 * macosSystemLibrary('/usr/lib/libSystem.B.dylib') // 'a macOS library in /usr/lib'
 * macosSystemLibrary('@rpath/libggml-base.dylib')  // null
 */
export function macosSystemLibrary(name: string): string | null {
  if (name.startsWith('/usr/lib/')) return 'a macOS library in /usr/lib';
  if (name.startsWith('/System/')) return 'a macOS framework in /System';
  return null;
}
