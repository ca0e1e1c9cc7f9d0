# Sourced by scripts/test and scripts/fuzz: where the test build goes and
# with which flags, so that the fuzz build reuses every module it does not
# instrument.
#
# What this build may skip, as it is never benchmarked or shipped: debug
# information (-g0, -gnone) and the optimization of the C dependencies
# (-O0: BoringSSL twice, llhttp, zlib; their hot crypto is assembly either
# way). Together they halve a clean build on 2 cores (about 24 minutes to 12).
# The Swift code stays optimized, as users run it. The Swift runtime is
# linked dynamically (SWIFTMESH_STATIC_STDLIB=0): Swift Testing ships only
# as a dynamic library.
BUILD_PATH=.build/test
TEST_BUILD_FLAGS=(-Xswiftc -enable-testing -Xswiftc -gnone -Xcc -O0 -Xcc -g0)
export SWIFTMESH_STATIC_STDLIB=0
