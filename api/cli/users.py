"""``renewal users add|list|revoke|key``: users, roles, districts and API keys.

Keys are printed once, when issued; only their argon2 hash is stored. Districts are given
as adcodes (130108) or names (裕华区) and checked against ``renewal.districts``.
"""

from __future__ import annotations

from typing import Annotated

import psycopg
import typer
from rich.table import Table

from api.auth import ROLES, generate_key, hash_secret
from api.settings import Settings
from gis.errors import InvalidInputError, NotFoundError

users_app = typer.Typer(help="Users, roles and API keys.", no_args_is_help=True)


def resolve_districts(conn: psycopg.Connection, names: list[str]) -> list[str]:
    """Adcodes for district codes or names; unknown ones are an error."""
    out: list[str] = []
    for name in names:
        row = conn.execute(
            "SELECT code FROM renewal.districts WHERE code = %s OR name = %s ORDER BY code LIMIT 1", (name, name)
        ).fetchone()
        if row is None:
            raise InvalidInputError(f"'{name}' is not a district code or name in renewal.districts.")
        out.append(str(row[0]))
    return sorted(set(out))


def add_user(database_url: str, name: str, role: str, districts: list[str], display_name: str | None = None,
             label: str | None = None) -> str:
    """Create a user and a first API key; return the key (shown once)."""
    if role not in ROLES:
        raise InvalidInputError(f"Role must be one of {', '.join(ROLES)}.")
    with psycopg.connect(database_url) as conn:
        codes = resolve_districts(conn, districts)
        if role == "editor" and not codes:
            raise InvalidInputError("An editor needs at least one --district.")
        try:
            row = conn.execute(
                "INSERT INTO renewal.users (name, role, districts, display_name) VALUES (%s, %s, %s, %s) RETURNING id",
                (name, role, codes, display_name),
            ).fetchone()
        except psycopg.errors.UniqueViolation:
            raise InvalidInputError(f"User '{name}' already exists; use 'renewal users key {name}'.") from None
        except psycopg.errors.CheckViolation:
            raise InvalidInputError("User names are 1-64 letters, digits, '_', '.', '@' or '-'.") from None
        assert row is not None
        return _issue(conn, int(row[0]), label)


def _issue(conn: psycopg.Connection, user_id: int, label: str | None) -> str:
    key_id, secret, full = generate_key()
    conn.execute(
        "INSERT INTO renewal.api_keys (user_id, key_id, key_hash, label) VALUES (%s, %s, %s, %s)",
        (user_id, key_id, hash_secret(secret), label),
    )
    return full


def issue_key(database_url: str, name: str, label: str | None = None) -> str:
    """Another key for an existing, enabled user."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT id FROM renewal.users WHERE name = %s AND disabled_at IS NULL", (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"No enabled user '{name}'.")
        return _issue(conn, int(row[0]), label)


def revoke(database_url: str, target: str) -> int:
    """Revoke one key (by key id) or every key of a user and disable the user; return keys revoked."""
    with psycopg.connect(database_url) as conn:
        n = conn.execute(
            "UPDATE renewal.api_keys SET revoked_at = now() WHERE key_id = %s AND revoked_at IS NULL", (target,)
        ).rowcount
        if n:
            return n
        user = conn.execute(
            "UPDATE renewal.users SET disabled_at = now() WHERE name = %s AND disabled_at IS NULL RETURNING id",
            (target,),
        ).fetchone()
        if user is None:
            raise NotFoundError(f"'{target}' is neither an active key id nor an enabled user.")
        return conn.execute(
            "UPDATE renewal.api_keys SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL", (user[0],)
        ).rowcount


@users_app.command("add")
def add_cmd(
    name: str = typer.Argument(..., help="Login name, e.g. yuhua.zhang"),
    role: str = typer.Option("viewer", help="viewer, editor, reviewer or admin"),
    district: Annotated[list[str] | None, typer.Option("--district", "-d", help="District adcode or name (repeatable)")]
    = None,
    display_name: str | None = typer.Option(None, help="Full name shown in the audit trail"),
    label: str | None = typer.Option(None, help="What the key is for"),
) -> None:
    """Create a user and print their first API key (shown once)."""
    from api.cli import console

    key = add_user(Settings().owner_url, name, role, district or [], display_name, label)
    console.print(f"User [bold]{name}[/] ({role}) created. API key (store it now, it is not shown again):")
    console.print(key, soft_wrap=True, highlight=False)


def set_password(database_url: str, name: str, password: str) -> None:
    """Set the viewer sign-in password of an enabled user (stored as an argon2id hash)."""
    if len(password) < 8:
        raise InvalidInputError("A password needs at least 8 characters.")
    with psycopg.connect(database_url) as conn:
        n = conn.execute("UPDATE renewal.users SET password_hash = %s WHERE name = %s AND disabled_at IS NULL",
                         (hash_secret(password), name)).rowcount
    if n == 0:
        raise NotFoundError(f"No enabled user '{name}'.")


@users_app.command("password")
def password_cmd(
    name: str = typer.Argument(...),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 help="The sign-in password for the web viewer (at least 8 characters)"),
) -> None:
    """Set a user's password for signing in to the web viewer."""
    from api.cli import console

    set_password(Settings().database_url, name, password)
    console.print(f"Password of [bold]{name}[/] set.")


@users_app.command("key")
def key_cmd(name: str = typer.Argument(...), label: str | None = typer.Option(None)) -> None:
    """Issue another API key for a user."""
    from api.cli import console

    console.print(issue_key(Settings().owner_url, name, label), soft_wrap=True, highlight=False)


@users_app.command("list")
def list_cmd() -> None:
    """Users with role, districts and active key ids."""
    from api.cli import console

    with psycopg.connect(Settings().owner_url) as conn:
        rows = conn.execute(
            "SELECT u.name, u.role, array_to_string(u.districts, ','), u.disabled_at IS NOT NULL, "
            "coalesce(string_agg(k.key_id, ', ' ORDER BY k.id) FILTER (WHERE k.revoked_at IS NULL), '') "
            "FROM renewal.users AS u LEFT JOIN renewal.api_keys AS k ON k.user_id = u.id "
            "GROUP BY u.id ORDER BY u.name"
        ).fetchall()
    table = Table("user", "role", "districts", "status", "active keys")
    for name, role, districts, disabled, keys in rows:
        table.add_row(name, role, districts, "disabled" if disabled else "active", keys)
    console.print(table)


@users_app.command("revoke")
def revoke_cmd(target: str = typer.Argument(..., help="A key id, or a user name (revokes all their keys)")) -> None:
    """Revoke a key, or disable a user and revoke all their keys."""
    from api.cli import console

    n = revoke(Settings().owner_url, target)
    console.print(f"Revoked {n} key(s). Running servers stop accepting them within RENEWAL_AUTH_CACHE_TTL_S.")


def register(app: typer.Typer) -> None:
    """Add ``users`` to the root CLI."""
    app.add_typer(users_app, name="users")
