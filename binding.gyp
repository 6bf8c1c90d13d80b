# Demo and test libraries for dlbundle (sources in native/).
#
# Every output lands in ONE directory, build/Release/ (<(PRODUCT_DIR)):
#   libdemo_core.so            SONAME libdemo_core.so
#   libdemo_codec.so.1.2.3     SONAME libdemo_codec.so.1   NEEDED libdemo_core.so
#   libdemo_app.so             SONAME libdemo_app.so       NEEDED libdemo_codec.so.1, libdemo_core.so
#   libdemo_plugin.so          SONAME libdemo_plugin.so    (dlopen()ed by libdemo_app.so from its own dir)
#   libdemo_gpu_runtime.so.1   SONAME libdemo_gpu_runtime.so.1 (stand-in, NOT part of the bundle)
#   libdemo_accel.so           SONAME libdemo_accel.so     NEEDED libdemo_gpu_runtime.so.1
#   libdemo_big.so             SONAME libdemo_big.so       NEEDED libdemo_core.so (64 MiB, for benchmarks)
#   libdemo_big_1m.so          SONAME libdemo_big_1m.so    NEEDED libdemo_core.so (the same, 944 KiB: with
#                              core, codec, app and plugin a bundle of about 1 MiB, for benchmarks)
#   libchain_00.so … libchain_49.so  SONAME = file name, each NEEDED the one before (native/chain.c);
#                              their targets are generated into build/chain.gypi by scripts/build-native.js
#   simd-baseline/libdemo_simd.so and simd-avx2/libdemo_simd.so: one library, two builds
#   demo.node                  N-API addon                 NEEDED libdemo_core.so
#   demo_runpath.node          the same addon              NEEDED libdemo_codec.so.1, libdemo_core.so
#                              RUNPATH $ORIGIN/../../lib (laid out as an npm package by the tests of
#                              pack --package: the codec in lib/, the core beside the addon)
#   libtoo_new_libc_stub.so    SONAME libc.so.6, defines GLIBC_2.99 (link-time stand-in, never loaded)
#   libtoo_new_glibc.so        SONAME libtoo_new_glibc.so  NEEDED libc.so.6 (needs GLIBC_2.99 from it), libdemo_core.so
#   libtoo_new_cxx_stub.so     SONAME libstdc++.so.6, defines GLIBCXX_3.4.99 and CXXABI_1.3.99
#   libtoo_new_cxx.so          SONAME libtoo_new_cxx.so    NEEDED libstdc++.so.6, needs those versions
# Apart from demo_runpath.node, none has DT_RPATH or DT_RUNPATH: they find each other only because
# a loader dlopen()s them in dependency order (glibc reuses an already loaded
# object whose SONAME matches a DT_NEEDED entry).
#
# How this is kept away from gyp's defaults (make generator, node-gyp 11):
# - Every library is a 'loadable_module', never a 'shared_library'. A
#   'dependencies' entry on a shared_library makes gyp link it by path from
#   lib.target/ and, whenever any dependency's output ends in .so, add
#   -Wl,-rpath=$ORIGIN/ (generator/make.py). loadable_modules are never link
#   inputs of their dependents and are installed straight into $(builddir).
# - Build order comes from 'none' stamp targets (*_built) that depend on a
#   library; a dependent library depends on the stamp, whose output does not
#   end in .so, so gyp adds no rpath. The actual linking is done with
#   -L<(PRODUCT_DIR) -l:<file name>, so DT_NEEDED records the SONAME.
# - gyp passes -Wl,-soname=$(@F) after 'ldflags' but before 'libraries', so a
#   different SONAME (libdemo_codec.so.1) is set through 'libraries', and the
#   last -soname wins.
# - node-gyp's addon.gypi sets product_extension 'node' for every
#   loadable_module in its target_conditions, which are applied after those of
#   this file's target_defaults; so each target sets its own extension in a
#   target-level target_conditions entry (applied last), and product_prefix ''
#   plus product_name give the rest of the file name.
{
  # Written by scripts/build-native.js (run that, not node-gyp rebuild, whose
  # clean step would delete it).
  'includes': ['build/chain.gypi'],
  'target_defaults': {
    'type': 'loadable_module',
    'product_prefix': '',
    'cflags': ['-fPIC', '-fvisibility=hidden', '-std=gnu11', '-Wall', '-Wextra'],
    'ldflags': ['-fPIC'],
    'configurations': {
      # common.gypi's Release config adds -O3 after the target's cflags.
      'Release': { 'cflags!': ['-O3'], 'cflags': ['-O2'] },
      'Debug': { 'cflags': ['-O0'] },
    },
    'variables': {
      # 1: refuse undefined symbols at link time (-z defs).
      'demo_link_strict%': 1,
    },
    'target_conditions': [
      ['>(demo_link_strict)==1', {
        'ldflags': ['-Wl,-z,defs'],
      }],
    ],
  },
  'targets': [
    {
      'target_name': 'demo_core',
      'product_name': 'libdemo_core',
      'target_conditions': [['_type=="loadable_module"', {'product_extension': 'so'}]],
      'sources': ['native/demo_core.c'],
    },
    {
      'target_name': 'demo_core_built',
      'type': 'none',
      'dependencies': ['demo_core'],
    },
    {
      'target_name': 'demo_codec',
      'product_name': 'libdemo_codec',
      'target_conditions': [['_type=="loadable_module"', {'product_extension': 'so.1.2.3'}]],
      'sources': ['native/demo_codec.c'],
      'dependencies': ['demo_core_built'],
      'libraries': [
        '-Wl,-soname,libdemo_codec.so.1',
        '-L<(PRODUCT_DIR)',
        '-l:libdemo_core.so',
      ],
    },
    {
      'target_name': 'demo_codec_built',
      'type': 'none',
      'dependencies': ['demo_codec'],
    },
    {
      'target_name': 'demo_plugin',
      'product_name': 'libdemo_plugin',
      'target_conditions': [['_type=="loadable_module"', {'product_extension': 'so'}]],
      'sources': ['native/demo_plugin.c'],
    },
    {
      'target_name': 'demo_plugin_built',
      'type': 'none',
      'dependencies': ['demo_plugin'],
    },
    {
      'target_name': 'demo_app',
      'product_name': 'libdemo_app',
      'target_conditions': [['_type=="loadable_module"', {'product_extension': 'so'}]],
      'sources': ['native/demo_app.c'],
      # demo_plugin_built only so that the plugin is always built beside
      # libdemo_app.so; it is not linked (libdemo_app.so dlopen()s it).
      'dependencies': ['demo_codec_built', 'demo_core_built', 'demo_plugin_built'],
      'libraries': [
        '-L<(PRODUCT_DIR)',
        '-Wl,-rpath-link,<(PRODUCT_DIR)',
        '-l:libdemo_codec.so.1.2.3',
        '-l:libdemo_core.so',
        '-ldl',
      ],
    },
    {
      'target_name': 'demo_gpu_runtime',
      'product_name': 'libdemo_gpu_runtime',
      'target_conditions': [['_type=="loadable_module"', {'product_extension': 'so.1'}]],
      'sources': ['native/demo_gpu_runtime.c'],
    },
    {
      'target_name': 'demo_gpu_runtime_built',
      'type': 'none',
      'dependencies': ['demo_gpu_runtime'],
    },
    {
      'target_name': 'demo_accel',
      'product_name': 'libdemo_accel',
      'target_conditions': [['_type=="loadable_module"', {'product_extension': 'so'}]],
      'sources': ['native/demo_accel.c'],
      'dependencies': ['demo_gpu_runtime_built'],
      'libraries': [
        '-L<(PRODUCT_DIR)',
        '-l:libdemo_gpu_runtime.so.1',
      ],
    },
    {
      'target_name': 'demo_big',
      'product_name': 'libdemo_big',
      'target_conditions': [['_type=="loadable_module"', {'product_extension': 'so'}]],
      'sources': ['native/demo_big.c'],
      'dependencies': ['demo_core_built'],
      'libraries': [
        '-L<(PRODUCT_DIR)',
        '-l:libdemo_core.so',
      ],
    },
    {
      'target_name': 'demo_big_1m',
      'product_name': 'libdemo_big_1m',
      'target_conditions': [['_type=="loadable_module"', {'product_extension': 'so'}]],
      'defines': ['DEMO_BIG_KIB=944u'],
      'sources': ['native/demo_big.c'],
      'dependencies': ['demo_core_built'],
      'libraries': [
        '-L<(PRODUCT_DIR)',
        '-l:libdemo_core.so',
      ],
    },
    # The same library twice, for CPU-feature variants (linux-x64-gnu and
    # linux-x64-gnu+avx2): one file name, two directories.
    {
      'target_name': 'demo_simd_baseline',
      'product_name': 'libdemo_simd',
      'product_dir': '<(PRODUCT_DIR)/simd-baseline',
      'target_conditions': [['_type=="loadable_module"', {'product_extension': 'so'}]],
      'cflags': ['-mno-avx2'],
      'sources': ['native/demo_simd.c'],
    },
    # gyp copies every loadable module to <(PRODUCT_DIR)/<product> as well:
    # two products of one name would make two rules for one file (make's
    # "overriding recipe"). So this one is built as libdemo_simd_avx2.so with
    # the soname libdemo_simd.so (the last -soname wins), and
    # scripts/build-native.js renames it to simd-avx2/libdemo_simd.so.
    {
      'target_name': 'demo_simd_avx2',
      'product_name': 'libdemo_simd_avx2',
      'product_dir': '<(PRODUCT_DIR)/simd-avx2',
      'target_conditions': [['_type=="loadable_module"', {'product_extension': 'so'}]],
      'cflags': ['-mavx2'],
      'sources': ['native/demo_simd.c'],
      'libraries': ['-Wl,-soname,libdemo_simd.so'],
    },
    {
      'target_name': 'demo',
      'product_name': 'demo',
      'target_conditions': [['_type=="loadable_module"', {'product_extension': 'node'}]],
      'variables': {
        # napi_* symbols are resolved from the node binary at load time.
        'demo_link_strict': 0,
      },
      'sources': ['native/demo_addon.c'],
      'dependencies': ['demo_core_built'],
      'libraries': [
        '-L<(PRODUCT_DIR)',
        '-l:libdemo_core.so',
      ],
    },
    {
      'target_name': 'demo_runpath',
      'product_name': 'demo_runpath',
      'target_conditions': [['_type=="loadable_module"', {'product_extension': 'node'}]],
      'variables': {
        'demo_link_strict': 0,
      },
      'sources': ['native/demo_addon.c'],
      'dependencies': ['demo_codec_built', 'demo_core_built'],
      # --no-as-needed (for these two only): the addon calls only the core,
      # but the codec must stay a DT_NEEDED entry found through the RUNPATH. '$$' is make's '$'; the
      # quotes keep the shell from expanding $ORIGIN.
      'libraries': [
        '-L<(PRODUCT_DIR)',
        '-Wl,--no-as-needed',
        '-l:libdemo_codec.so.1.2.3',
        '-l:libdemo_core.so',
        '-Wl,--as-needed',
        "-Wl,-rpath,'$$ORIGIN/../../lib'",
      ],
    },
    # A system too old for a library (E_SYSTEM_TOO_OLD): stand-ins for a
    # libc.so.6 and a libstdc++.so.6 newer than any real one, each with a
    # version script, and two libraries linked against them, which therefore
    # need GLIBC_2.99, GLIBCXX_3.4.99 and CXXABI_1.3.99 (.gnu.version_r) and
    # are refused by the dynamic linker on every real system.
    {
      'target_name': 'too_new_libc_stub',
      'product_name': 'libtoo_new_libc_stub',
      'target_conditions': [['_type=="loadable_module"', {'product_extension': 'so'}]],
      # No builtins: the stub's own strlen loop must not become a call to strlen.
      'cflags': ['-fno-builtin', '-fno-tree-loop-distribute-patterns'],
      'sources': ['native/too_new_libc_stub.c'],
      'ldflags': ['-nostdlib', '-Wl,--version-script,<(module_root_dir)/native/too_new_libc_stub.map'],
      'libraries': ['-Wl,-soname,libc.so.6'],
    },
    {
      'target_name': 'too_new_libc_stub_built',
      'type': 'none',
      'dependencies': ['too_new_libc_stub'],
    },
    {
      'target_name': 'too_new_glibc',
      'product_name': 'libtoo_new_glibc',
      'target_conditions': [['_type=="loadable_module"', {'product_extension': 'so'}]],
      'sources': ['native/too_new_glibc.c'],
      'dependencies': ['too_new_libc_stub_built', 'demo_core_built'],
      # The stand-in comes before the real libc and has its soname, so the
      # linker takes strlen from it too (at GLIBC_2.2.5, as the real one).
      'libraries': ['-L<(PRODUCT_DIR)', '-l:libtoo_new_libc_stub.so', '-l:libdemo_core.so'],
    },
    {
      'target_name': 'too_new_cxx_stub',
      'product_name': 'libtoo_new_cxx_stub',
      'target_conditions': [['_type=="loadable_module"', {'product_extension': 'so'}]],
      'sources': ['native/too_new_cxx_stub.c'],
      'ldflags': ['-Wl,--version-script,<(module_root_dir)/native/too_new_cxx_stub.map'],
      'libraries': ['-Wl,-soname,libstdc++.so.6'],
    },
    {
      'target_name': 'too_new_cxx_stub_built',
      'type': 'none',
      'dependencies': ['too_new_cxx_stub'],
    },
    {
      'target_name': 'too_new_cxx',
      'product_name': 'libtoo_new_cxx',
      'target_conditions': [['_type=="loadable_module"', {'product_extension': 'so'}]],
      'sources': ['native/too_new_cxx.c'],
      'dependencies': ['too_new_cxx_stub_built'],
      'libraries': ['-L<(PRODUCT_DIR)', '-l:libtoo_new_cxx_stub.so'],
    },
  ],
}
