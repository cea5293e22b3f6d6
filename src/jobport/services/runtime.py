"""What services need at hand: settings, the database, the dispatcher, and the cipher of
secrets at rest."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobport.settings import Settings
from jobport.store.db import Database
from jobport.store.secrets import Cipher, load_cipher

if TYPE_CHECKING:
    from jobport.engine.dispatcher import Dispatcher


@dataclass
class Runtime:
    settings: Settings
    db: Database
    dispatcher: Dispatcher | None = None  # None: store-only use (CLI --local, tests)
    access: Any = None  # services.access.AccessState, set by services.access.bootstrap
    audit: Any = None  # services.audit.AuditTrail, set by the API app
    starts: Any = None  # services.starts.StartQueue (group commit), set by boot.serving
    _cipher: Cipher | None = field(default=None, repr=False)
    _cipher_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check_database(self) -> None:
        """Raise if the database does not answer (for /readyz)."""
        with self.db.read() as conn:
            conn.exec_driver_sql("SELECT 1")

    def cipher(self) -> Cipher:
        """The cipher of connections' secrets, loaded on first use (a server that never
        touches a connection never reads the key, nor makes its file)."""
        with self._cipher_lock:
            if self._cipher is None:
                self._cipher = load_cipher(
                    self.settings.encryption_key, self.settings.encryption_key_file
                )
            return self._cipher
