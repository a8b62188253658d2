"""Shared-file-system stand-ins for tests/test_shared_fs.py: a lock-refusing FUSE mount, and
processes that run as another host.

The kernel of the test machines has no NFS client (no ``nfs`` in /proc/filesystems, no
modules), so a loopback NFS export is impossible. ``lockless_fs.c`` (beside this file) is a
FUSE file system that mirrors a folder and refuses every ``flock``/``fcntl`` lock with the
code NFS without its lock daemon (ENOLCK), Lustre without ``-o flock`` (ENOSYS) or others
(EOPNOTSUPP) answer; it is compiled on first use against Debian's libfuse3. Another "host"
is a process in its own UTS and PID namespaces (``unshare``) with another hostname.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import signal
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "lockless_fs.c")
#: Debian packages that building and mounting need.
PACKAGES = ["gcc", "pkg-config", "libfuse3-dev", "fuse3"]


class Unavailable(Exception):
    """This machine cannot mount the test file system (the reason is the message)."""


def must_run() -> bool:
    """Whether a skip would hide a failure: CI, as root, on a machine with FUSE and apt."""
    return (
        os.environ.get("CI") == "true"
        and os.geteuid() == 0
        and os.path.exists("/dev/fuse")
        and shutil.which("apt-get") is not None
    )


def build(cache: str | None = None) -> str:
    """The path of the compiled lockless_fs, built (and its packages installed) if needed."""
    if not os.path.exists("/dev/fuse"):
        raise Unavailable("no /dev/fuse on this machine")
    with open(SOURCE, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()[:16]
    cache = cache or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "xsweep-lockless-fs"
    )
    binary = os.path.join(cache, f"lockless_fs-{digest}")
    if os.access(binary, os.X_OK) and shutil.which("fusermount3"):
        return binary
    _install_packages()
    os.makedirs(cache, exist_ok=True)
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "fuse3"], capture_output=True, text=True
    )
    if flags.returncode != 0:
        raise Unavailable(f"pkg-config finds no fuse3: {flags.stderr.strip()}")
    tmp = f"{binary}.{os.getpid()}"
    cc = subprocess.run(
        ["cc", "-O1", "-Wall", SOURCE, *flags.stdout.split(), "-o", tmp],
        capture_output=True,
        text=True,
    )
    if cc.returncode != 0:
        raise Unavailable(f"compiling {SOURCE} failed:\n{cc.stderr[-2000:]}")
    os.replace(tmp, binary)
    return binary


def _install_packages() -> None:
    missing = (
        [
            p
            for p in PACKAGES
            if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0
        ]
        if shutil.which("dpkg")
        else PACKAGES
    )
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise Unavailable(f"missing {' '.join(missing)} and cannot apt-get them (not root)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    done = subprocess.run(
        f"apt-get update -qq && apt-get install -y -qq {' '.join(missing)}",
        shell=True,
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode != 0:
        raise Unavailable(f"apt-get install {' '.join(missing)} failed: {done.stderr[-1000:]}")


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the test process dies (then auto_unmount)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class LocklessMount:
    """``mount`` mirrors ``backing``; every lock there is refused with ``refusal``."""

    def __init__(self, binary: str, refusal: str, backing: str, mount: str) -> None:
        self.binary, self.refusal, self.backing, self.mount = binary, refusal, backing, mount
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> LocklessMount:
        os.makedirs(self.backing, exist_ok=True)
        os.makedirs(self.mount, exist_ok=True)
        args = [self.binary, self.refusal, self.backing, self.mount, "-f"]
        args += ["-o", "auto_unmount,max_threads=16"]
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 10
        while not os.path.ismount(self.mount):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                self.__exit__()
                raise Unavailable(f"lockless_fs did not mount {self.mount}: {err.strip()}")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        if os.path.ismount(self.mount):
            subprocess.run(["fusermount3", "-u", self.mount], capture_output=True)
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if os.path.ismount(self.mount):
            subprocess.run(["umount", "-l", self.mount], capture_output=True)
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None


def can_be_another_host() -> str | None:
    """None if processes can run as another host here (root, ``unshare``), else why not."""
    if os.geteuid() != 0:
        return "not root: unshare --uts --pid needs root"
    if not shutil.which("unshare") or not shutil.which("hostname"):
        return "no unshare or hostname command (Debian package util-linux, hostname)"
    probe = subprocess.run(
        ["unshare", "--uts", "--pid", "--fork", "--mount-proc", "hostname", "probe"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return f"unshare fails here: {probe.stderr.strip()}"
    return None


def as_host(host: str, argv: list[str]) -> list[str]:
    """``argv`` run as if on machine ``host``: its own hostname and PID namespace."""
    import shlex

    command = f"hostname {shlex.quote(host)} && exec {shlex.join(argv)}"
    return ["unshare", "--uts", "--pid", "--fork", "--mount-proc", "sh", "-c", command]
