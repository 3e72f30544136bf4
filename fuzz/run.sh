#!/usr/bin/env bash
# Builds every fuzz target once and runs each for SECONDS (default 30), seeded from
# fuzz/corpus/<target>. Exits non-zero if any target crashes, leaks past its limits or fails
# to build. Prints each target's executions.
#
#   fuzz/run.sh [SECONDS]
#
# Needs the nightly toolchain; installs cargo-fuzz if missing. Builds into $SHALE_FUZZ_TARGET_DIR,
# or $HOME/.cache/shale-fuzz-target. Nothing is written to the checkout: inputs the fuzzer finds
# go to a temporary directory (kept, and named, when a target crashes), and the committed seed
# corpora are only read. To keep a newly found input as a seed, copy it into fuzz/corpus/<target>
# and `git add -f` it (fuzz/corpus is git-ignored so working corpora do not dirty the clone).
set -euo pipefail

seconds="${1:-30}"
case "$seconds" in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Its own target directory (nightly, sanitizer flags): never the stable build's CARGO_TARGET_DIR.
export CARGO_TARGET_DIR="${SHALE_FUZZ_TARGET_DIR:-$HOME/.cache/shale-fuzz-target}"
targets=(sql_parser manifest_log segment_reader repository_meta model)

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "== installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version > /dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

cd "$fuzz_dir"
echo "== building ${#targets[@]} fuzz targets into $CARGO_TARGET_DIR"
build_start=$SECONDS
cargo +nightly fuzz build --debug-assertions --target-dir "$CARGO_TARGET_DIR"
echo "== built in $((SECONDS - build_start)) s"

host="$(rustc +nightly -vV | sed -n 's/^host: //p')"
bin_dir="$CARGO_TARGET_DIR/$host/release"
work="$(mktemp -d "${TMPDIR:-/tmp}/shale-fuzz.XXXXXX")"
# The targets that open engines make a temporary directory per input and fsync in it: on tmpfs
# (when there is one) they run a few times faster. They check logic, not the device.
target_tmp="${TMPDIR:-/tmp}"
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    target_tmp=/dev/shm
fi
failed=()
summary=()
for target in "${targets[@]}"; do
    corpus="$work/corpus/$target"
    artifacts="$work/artifacts/$target"
    mkdir -p "$corpus" "$artifacts" "$fuzz_dir/corpus/$target"
    log="$work/$target.log"
    echo "== $target for ${seconds} s"
    status=0
    # The first corpus directory receives new inputs; the committed seeds are read only.
    # A per-input timeout and memory limit turn hangs and blow-ups into failures.
    TMPDIR="$target_tmp" "$bin_dir/$target" "$corpus" "$fuzz_dir/corpus/$target" \
        -max_total_time="$seconds" -timeout=60 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 > "$log" 2>&1 || status=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    execs="${execs:-0}"
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        summary+=("$(printf '%-16s FAILED (exit %s) after %s execs' "$target" "$status" "$execs")")
        echo "---- $target failed; the last lines of its log ($log):"
        tail -n 60 "$log"
        for artifact in "$artifacts"/*; do
            [ -f "$artifact" ] || continue
            echo "---- input $artifact, base64 (decode into a file and pass it to the target):"
            base64 -w 0 "$artifact"
            echo
        done
    else
        summary+=("$(printf '%-16s ok  %10s execs' "$target" "$execs")")
    fi
done

echo "== fuzz summary (${seconds} s per target)"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -ne 0 ]; then
    echo "== FAILED: ${failed[*]} (inputs and logs kept in $work)"
    exit 1
fi
rm -rf "$work"
