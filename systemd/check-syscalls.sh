#!/usr/bin/env bash
# Checks that livechatd stays inside the unit's system call filter and address families:
# runs the end-to-end suite (tests/, every daemon under strace) and compares every system
# call made with @system-service minus @privileged and @resources, as the unit allows, and
# every socket family with RestrictAddressFamilies=. Manual (needs strace and systemd-analyze;
# about a minute): bash systemd/check-syscalls.sh [path/to/livechatd]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(realpath "${1:-${CARGO_TARGET_DIR:-target}/debug/livechatd}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat >"$work/livechatd" <<WRAP
#!/bin/sh
exec strace -D -f -qq -o "$work/trace.\$\$" "$bin" "\$@"
WRAP
chmod +x "$work/livechatd"
LIVECHATD_BIN="$work/livechatd" cargo test -q -p livechat-tests >"$work/test.log" 2>&1 \
    || { cat "$work/test.log"; echo "check-syscalls: the suite failed under strace" >&2; exit 1; }
python3 - "$work" <<'PY'
import glob, re, subprocess, sys
work = sys.argv[1]
groups, cur = {}, None
for line in subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True,
                           text=True, check=True).stdout.splitlines():
    s = line.strip()
    if line.startswith("@"):
        cur = s; groups[cur] = []
    elif cur and s and not s.startswith("#"):
        groups[cur].append(s)
def expand(g, seen=None):
    seen = seen if seen is not None else set()
    out = set()
    for x in groups.get(g, []):
        if x.startswith("@"):
            if x not in seen:
                seen.add(x); out |= expand(x, seen)
        else:
            out.add(x)
    return out
allowed = expand("@system-service") - expand("@privileged") - expand("@resources")
used, families = set(), set()
for path in glob.glob(f"{work}/trace.*"):
    for line in open(path):
        line = re.sub(r"^\d+\s+", "", line)
        m = re.match(r"<\.\.\. (\w+) resumed>", line) or re.match(r"(\w+)\(", line)
        if m:
            used.add(m.group(1))
        f = re.match(r"socket\((AF_\w+)", line)
        if f:
            families.add(f.group(1))
used.discard("execve")  # the exec from the wrapper, before the filter would apply
bad = sorted(used - allowed)
bad_fam = sorted(families - {"AF_INET", "AF_INET6", "AF_UNIX"})
print(f"check-syscalls: {len(used)} system calls used: {' '.join(sorted(used))}")
print(f"check-syscalls: socket families: {' '.join(sorted(families))}")
if bad or bad_fam:
    print(f"check-syscalls: OUTSIDE THE UNIT'S FILTER: {bad} {bad_fam}")
    sys.exit(1)
print("check-syscalls: all inside SystemCallFilter= and RestrictAddressFamilies=")
PY
