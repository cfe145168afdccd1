"""Where a policy's state outlives the process and is shared by a fleet: `FileStore` (one
machine) and `RedisStore` (a fleet across machines), both in the layout of tests/fleet/README.md
that every host shares. Every merge, diff and fold is the policy's own (`merge`, `changes`,
`fold`), so every host joins state by the same rules.
"""

from .errors import StoreError, StoreLocked, StoreRefused, StoreUnavailable
from .file_log import FileStore
from .layout import Loaded, Options, SetAside
from .redis_log import RedisStore
from .sync import Stats, StoreSync

__all__ = ["FileStore", "Loaded", "Options", "RedisStore", "SetAside", "Stats", "StoreError", "StoreLocked",
           "StoreRefused", "StoreSync", "StoreUnavailable"]
