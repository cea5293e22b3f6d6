"""`jobport postman`: the server's API as a Postman collection, for Postman or newman."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from jobport.cli._shared import UrlOption, session

OutputOption = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write it to this file instead of stdout."),
]


def postman(ctx: typer.Context, output: OutputOption = None, url: UrlOption = None) -> None:
    """The API as a Postman collection (v2.1): every operation, Loome's variables (baseUrl,
    clientId, clientSecret, jobId) and a pre-request script that gets the token."""
    with session(ctx, url) as client:
        collection = client.postman_collection()
    text = json.dumps(collection, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    requests = sum(len(folder.get("item", [])) for folder in collection["item"])
    typer.echo(f"wrote {output}: {requests} requests; import it into Postman", err=True)
