"""Install what the browser tests need (Debian's chromium), when it is missing and we can.

Run by ``make test`` before pytest. Prints what it did; never fails the build by itself: the
browser tests report a missing browser themselves.
"""

from __future__ import annotations

import os
import shutil
import subprocess

CHROMIUM = "/usr/bin/chromium"


def main() -> int:
    if os.path.exists(CHROMIUM):
        print(f"browser tests: {CHROMIUM} present")
        return 0
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        print("browser tests: chromium missing and apt-get unavailable (not root?); install Debian's chromium")
        return 0
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    result = subprocess.run(["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"], check=False, env=env)
    print(f"browser tests: apt-get install chromium exited {result.returncode}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
