"""Build the archive the krew manifest (plugins/krew/curfew.yaml) installs: a tar.gz holding the
``kubectl-curfew`` launcher, byte-for-byte reproducible (fixed times, owners and modes), so its
sha256 in the manifest can be checked against a fresh build.

Usage: python scripts/kubectl-plugin-archive.py [OUTPUT]  (default dist/kubectl-curfew.tar.gz);
prints the archive's sha256.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = ROOT / "plugins" / "krew" / "kubectl-curfew"


def build_archive() -> bytes:
    """The archive's bytes: the launcher, mode 0755, owned by root, dated 1970."""
    data = LAUNCHER.read_bytes()
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("kubectl-curfew")
        info.size, info.mode, info.mtime = len(data), 0o755, 0
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(tar_bytes.getvalue())
    return out.getvalue()


def main() -> int:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "dist" / "kubectl-curfew.tar.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    archive = build_archive()
    target.write_bytes(archive)
    print(hashlib.sha256(archive).hexdigest())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
