"""Who may sign in to the web console (issue 18): a name (unique whatever its case), a role
(viewer: reads; editor: also gives feedback, pauses feeds, revives alerts) and an argon2 hash
made by monitor/passwords.py; the store never sees a password."""

from __future__ import annotations

from .base import Queries

ROLES = ("viewer", "editor")


def _role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role {role!r}: expected one of {', '.join(ROLES)}")
    return role


class UserQueries(Queries):
    def add_user(self, name: str, role: str, password_hash: str, now: float) -> bool:
        """A new user; False when the name is taken (whatever its case)."""
        cur = self.db.execute("INSERT INTO users (name, role, password_hash, created_at, updated_at) "
                              "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                              (name, _role(role), password_hash, now, now))
        return cur.rowcount == 1

    def remove_user(self, name: str) -> bool:
        return self.db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount == 1

    def set_password(self, name: str, password_hash: str, now: float) -> bool:
        return self.db.execute("UPDATE users SET password_hash = ?, updated_at = ? WHERE name = ?",
                               (password_hash, now, name)).rowcount == 1

    def set_role(self, name: str, role: str, now: float) -> bool:
        return self.db.execute("UPDATE users SET role = ?, updated_at = ? WHERE name = ?",
                               (_role(role), now, name)).rowcount == 1

    def user(self, name: str) -> dict | None:
        """{name, role, password_hash, created_at, updated_at}, the name as stored; None if unknown."""
        rows = self._rows("SELECT name, role, password_hash, created_at, updated_at FROM users WHERE name = ?",
                          [name])
        return rows[0] if rows else None

    def users(self) -> list[dict]:
        """Every user by name, without hashes."""
        return self._rows("SELECT name, role, created_at, updated_at FROM users ORDER BY name")

    def user_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM users").fetchone()[0])
