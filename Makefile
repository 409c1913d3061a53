# tessera: the commands a newcomer runs.  Everything builds into build/.
#   make          build libtessera.so, libtessera.a and the tools
#   make demo     build, then run a program with and without tessera
#   make test     build, then run every test through CTest
#   make bench    build, then run the benchmarks against glibc, jemalloc,
#                 mimalloc and tcmalloc
#   make install  install into PREFIX (default /usr/local)
BUILD ?= build
PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all configure demo test bench install clean

all: configure
	cmake --build $(BUILD) -j $(JOBS)

configure:
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS)

demo: all
	bash bench/demo.sh $(BUILD)

test: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: all
	bash bench/run.sh $(BUILD)
	bash bench/frag.sh $(BUILD)

install: all
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD)
