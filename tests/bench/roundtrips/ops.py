#!/usr/bin/env python3
"""Driver for roundtrips.sh: runs a fixed script of file operations on a
floatmount mount whose server is RTT_MS away, and prints for each one the
time per operation, that time in round trips (what a slow network
multiplies: the round trips on the caller's critical path), and the
compounds the agent sent per operation (from `floatmount status --json`,
background lease renewals left out), next to the protocol's minimum.

usage: ops.py MOUNT SERVER_DIR RTT_MS N FLOATMOUNT [ONLY]

MOUNT is the mount point, SERVER_DIR the export's directory on the server
(files made there are new to the mount), N the repetitions of each
single-file operation; ONLY (optional) a comma-separated list of row keys.
Prints one table; exit 1 if an operation failed."""
import fcntl
import json
import os
import subprocess
import sys
import tarfile
import time

MOUNT, SERVER, RTT_MS, N, FLOATMOUNT = (sys.argv[1], sys.argv[2], float(sys.argv[3]),
                                        int(sys.argv[4]), sys.argv[5])
ONLY = set(sys.argv[6].split(",")) if len(sys.argv) > 6 and sys.argv[6] else None
DATA = os.urandom(4096)


def calls():
    out = subprocess.run([FLOATMOUNT, "status", "--json", MOUNT], check=True,
                         capture_output=True, text=True).stdout
    c = json.loads(out).get("calls", {})
    c.pop("SEQUENCE (lease renewal)", None)
    return c


def measure(key, what, minimum, op, count=N, setup=None, per="op"):
    """Runs op(i) for i in range(count) after setup(); one table row."""
    if ONLY is not None and key not in ONLY:
        return
    if setup is not None:
        setup()
    before = calls()
    t0 = time.perf_counter_ns()
    for i in range(count):
        op(i)
    ms = (time.perf_counter_ns() - t0) / 1e6
    after = calls()
    sent = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    div = count if per == "op" else 1
    by_name = ", ".join(f"{k} {v / div:.2f}" for k, v in sorted(sent.items()))
    print(f"{what:<40} {ms / div:9.1f} {ms / div / RTT_MS:8.2f} "
          f"{sum(sent.values()) / div:9.2f}  {minimum:<14} {by_name}", flush=True)


def mpath(*parts):
    return os.path.join(MOUNT, *parts)


def spath(*parts):
    return os.path.join(SERVER, *parts)


def server_files(directory, prefix, count, size=4096):
    os.makedirs(spath(directory), exist_ok=True)
    for i in range(count):
        with open(spath(directory, f"{prefix}{i}"), "wb") as f:
            f.write(os.urandom(size) if size else b"")


def ensure(prefix):
    """Setup for a row that works on files an earlier row made, when that
    row was not chosen (ONLY): they are made on the server (so they are
    new to the mount, which may add a LOOKUP to the row)."""
    def setup():
        for i in range(N):
            if not os.path.exists(spath("w", f"{prefix}{i}")):
                with open(spath("w", f"{prefix}{i}"), "wb") as f:
                    f.write(DATA)
    return setup


def create_write_close(i):
    with open(mpath("w", f"new{i}"), "wb") as f:
        f.write(DATA)


def open_read_close(i):
    with open(mpath("r", f"f{i}"), "rb") as f:
        if len(f.read()) != len(DATA):
            raise RuntimeError("short read")


def stat_missing(i):
    try:
        os.stat(mpath("w", f"missing{i}"))
    except FileNotFoundError:
        return
    raise RuntimeError("a missing name exists")


def lock_unlock(fd):
    def op(_):
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.lockf(fd, fcntl.LOCK_UN)
    return op


def ls_l(directory, expect):
    def op(_):
        n = 0
        for e in os.scandir(mpath(directory)):
            os.lstat(e.path)
            n += 1
        if n != expect:
            raise RuntimeError(f"listed {n} of {expect}")
    return op


def readdir(directory, expect):
    def op(_):
        n = len(os.listdir(mpath(directory)))
        if n != expect:
            raise RuntimeError(f"listed {n} of {expect}")
    return op


def git_repo(files):
    repo = spath("repo")
    server_files("repo/src", "m", files, size=300)
    # An hour old: no file is "racily clean" (modified in the second the
    # index was written), so git compares stat data only and reads no file;
    # otherwise how many it reads depends on the clock.
    old = time.time() - 3600
    for name in os.listdir(spath("repo/src")):
        os.utime(spath("repo/src", name), (old, old))
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b",
               GIT_COMMITTER_EMAIL="b@b")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "x"]):
        subprocess.run(["git", "-c", f"safe.directory={repo}", *args], cwd=repo, env=env, check=True)


def git_status(_):
    subprocess.run(["git", "-c", f"safe.directory={mpath('repo')}", "status", "--porcelain"],
                   cwd=mpath("repo"), check=True, capture_output=True)


def make_tarball(path, files):
    src = os.path.join(os.path.dirname(path), "tarsrc")
    os.makedirs(src, exist_ok=True)
    for i in range(files):
        with open(os.path.join(src, f"t{i}"), "wb") as f:
            f.write(os.urandom(1024))
    with tarfile.open(path, "w") as t:
        t.add(src, arcname="t")


def main():
    tar_files = int(os.environ.get("BENCH_TAR_FILES", "1000"))
    git_files = int(os.environ.get("BENCH_GIT_FILES", "2000"))
    dir_entries = int(os.environ.get("BENCH_DIR_ENTRIES", "10000"))
    print(f"{'operation':<40} {'ms/op':>9} {'RTs/op':>8} {'calls/op':>9}  {'minimum':<14} calls by name")
    os.makedirs(mpath("w"), exist_ok=True)
    server_files("r", "f", N)
    measure("create", "create + write 4 KiB + close", "2", create_write_close)
    measure("read", "open + read 4 KiB + close (cold)", "1", open_read_close)
    measure("read_warm", "open + read 4 KiB + close (again)", "1", open_read_close)
    measure("stat_missing", "stat of a missing name", "1", stat_missing)
    measure("stat_missing_again", "stat of it again (within actimeo)", "0", stat_missing)
    measure("mkdir", "mkdir", "1", lambda i: os.mkdir(mpath("w", f"d{i}")))
    measure("rmdir", "rmdir", "1", lambda i: os.rmdir(mpath("w", f"d{i}")),
            setup=lambda: [os.makedirs(spath("w", f"d{i}"), exist_ok=True) for i in range(N)])
    measure("rename", "rename", "1",
            lambda i: os.rename(mpath("w", f"new{i}"), mpath("w", f"moved{i}")), setup=ensure("new"))
    measure("chmod", "chmod", "1", lambda i: os.chmod(mpath("w", f"moved{i}"), 0o600),
            setup=ensure("moved"))
    measure("symlink", "symlink", "1", lambda i: os.symlink(f"target{i}", mpath("w", f"l{i}")))
    measure("readlink", "readlink (cold)", "1", lambda i: os.readlink(mpath("r", f"l{i}")),
            setup=lambda: [os.symlink(f"target{i}", spath("r", f"l{i}")) for i in range(N)])
    measure("unlink", "unlink", "1", lambda i: os.unlink(mpath("w", f"moved{i}")),
            setup=ensure("moved"))
    if ONLY is None or "lock" in ONLY:
        fd = os.open(mpath("r", "f0"), os.O_RDWR)
        measure("lock", "fcntl lock + unlock (file open)", "2", lock_unlock(fd))
        os.close(fd)
    measure("ls", "ls -l of 200 files (in all)", "a few", ls_l("ls", 200), count=1,
            setup=lambda: server_files("ls", "f", 200, size=0), per="all")
    measure("readdir", f"readdir of {dir_entries} entries (in all)", "a few", readdir("big", dir_entries),
            count=1, setup=lambda: server_files("big", "e", dir_entries, size=0), per="all")
    measure("git", f"git status, {git_files} files (in all)", "-", git_status, count=1,
            setup=lambda: git_repo(git_files), per="all")
    tarball = os.path.join(os.environ.get("BENCH_TMP", "/tmp"), "roundtrips.tar")
    measure("tar", f"tar x of {tar_files} files of 1 KiB (in all)", "-",
            lambda _: subprocess.run(["tar", "xf", tarball, "-C", mpath("w")], check=True),
            count=1, setup=lambda: make_tarball(tarball, tar_files), per="all")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one line for the script's caller
        print(f"roundtrips: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
