"""The one name Open WebUI's revision files import from its app.

`7e5b5dc7342b_init.py` declares columns as `open_webui.internal.db.JSONField()`.
The real module reads the app's settings and opens engines at import time;
this keeps only the type, with the same storage (`impl = UnicodeText`, so
SQLite gets `TEXT`), which is all a migration's DDL sees.

No `__init__.py` here nor in `open_webui/`: namespace packages, so
`open_webui.migrations` (the unpacked wheel, also on sys.path) and
`open_webui.internal` (this shim) both resolve.
"""

import json

from sqlalchemy import types


class JSONField(types.TypeDecorator):
    """JSON stored as TEXT, as in open_webui/internal/db.py."""

    impl = types.UnicodeText
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return json.dumps(value, ensure_ascii=False) if value is not None else None

    def process_result_value(self, value, dialect):
        return json.loads(value) if value is not None else None

    def copy(self, **kwargs):
        return JSONField(length=self.impl.length)
