"""What a worker's steps reach through the store: a project's connections, with their
secrets decrypted, and the watermark of a step's last successful run."""

from __future__ import annotations

import threading
from typing import Any

from jobport.domain.connections import Resolved
from jobport.engine.steps import StepFailed
from jobport.settings import Settings
from jobport.store import connections as connection_store
from jobport.store.db import Database
from jobport.store.secrets import Cipher, load_cipher


class ConnectionSource:
    """A worker's reader of connections and watermarks. The key is loaded on first use, so
    a worker whose steps use no connection never reads it."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self._settings = settings
        self._db = db
        self._cipher: Cipher | None = None
        self._lock = threading.Lock()

    def cipher(self) -> Cipher:
        with self._lock:
            if self._cipher is None:
                self._cipher = load_cipher(
                    self._settings.encryption_key, self._settings.encryption_key_file
                )
            return self._cipher

    def resolve(self, project_id: str, name: str) -> Resolved:
        """The project's connection `name` with its secrets; StepFailed if there is none."""
        with self._db.read() as conn:
            row = connection_store.find(conn, project_id, name)
        if row is None:
            raise StepFailed(f"no connection {name!r} in this project")
        secret = self.cipher().decrypt(row["secret"])
        return Resolved(row["name"], row["kind"], secret["url"], dict(secret["headers"]))

    def watermark(self, job_id: str, step: str) -> Any:
        with self._db.read() as conn:
            return connection_store.watermark(conn, job_id, step)
