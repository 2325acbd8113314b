"""The session store (``SESSION_ENGINE``): Django's database sessions, the same table and data,
read with one hand-written statement.

Why: every signed-in request reads its session before anything else. Django's store builds that
``SELECT`` through the ORM each time (a queryset, a lookup, the compiler): under the pages-under-load
benchmark that was about 8 % of a web process's CPU for a statement whose text never changes.
Writing, expiry, ``clearsessions`` and the async paths stay Django's.
"""
from __future__ import annotations

import functools
from typing import Any

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import connections, router
from django.utils import timezone

from lusweb.sqlnames import column, table


class SessionStore(DatabaseSessionStore):
    def _get_session_from_db(self) -> Any:
        """The unexpired session row of this key, or None (and the key forgotten), as Django's."""
        key = self.session_key
        if key is None:
            return None
        with connections[router.db_for_read(self.model)].cursor() as cursor:
            cursor.execute(_select_sql(self.model), [key, timezone.now()])
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        return self.model(session_key=key, session_data=row[0], expire_date=row[1])


@functools.lru_cache(maxsize=4)
def _select_sql(model: Any) -> str:
    return (f"SELECT {column(model, 'session_data')}, {column(model, 'expire_date')} FROM {table(model)} "
            f"WHERE {column(model, 'session_key')} = %s AND {column(model, 'expire_date')} > %s")
