# Nightshift: the two commands a newcomer needs are `make run` and `make test`.
#   build/        release build (RelWithDebInfo) used by `make run` and `make bench`
#   build-debug/  Debug + AddressSanitizer + UndefinedBehaviorSanitizer, used by `make test`
LISTEN ?= 127.0.0.1:8080
DATA_DIR ?= .nightshift
JOBS ?= $(shell nproc)

.PHONY: deps build build-debug run test bench format clean

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j $(JOBS)

build-debug: deps
	@cmake -S . -B build-debug -G Ninja -DCMAKE_BUILD_TYPE=Debug -DNIGHTSHIFT_SANITIZE=ON >/dev/null
	@cmake --build build-debug -j $(JOBS)

run: build
	./build/nightshift serve --listen $(LISTEN) --data-dir $(DATA_DIR)

test: build-debug
	cd build-debug && ctest --output-on-failure -j $(JOBS) --timeout 600

bench: build
	@scripts/install-deps --bench
	scripts/bench

format:
	@find src tests bench -name '*.cc' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf build build-debug
