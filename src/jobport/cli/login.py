"""`jobport login` and `jobport logout`: keep a key's client credentials as a profile."""

from __future__ import annotations

from typing import Annotated

import typer

from jobport.cli._shared import UrlOption, session
from jobport.client import remove_profile, save_profile


def login(
    ctx: typer.Context,
    client_id: Annotated[str, typer.Option("--client-id", help="The key's client id.")],
    client_secret: Annotated[
        str | None,
        typer.Option("--client-secret", help="The key's client secret (asked for if left out)."),
    ] = None,
    url: UrlOption = None,
) -> None:
    """Check a key's client credentials and keep them for the next commands (a profile)."""
    secret = client_secret or str(typer.prompt("Client secret", hide_input=True))
    with session(ctx, url, client_id=client_id, client_secret=secret) as client:
        granted = client.token(client_id, secret)
    path = save_profile(client.url, client_id, secret)
    typer.echo(f"logged in to {client.url} as API key {client_id}")
    typer.echo(f"scopes: {granted.get('scope') or '-'}; profile: {path}", err=True)


def logout() -> None:
    """Forget the credentials `jobport login` kept."""
    path = remove_profile()
    typer.echo(f"logged out (removed {path})" if path else "not logged in")
