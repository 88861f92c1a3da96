"""The ``export`` command, kept beside :mod:`reconciler.export` and wired into the CLI with
``register(cli)``: ``reconciler export --out DIR [--backend B] [--kinds LIST] [--force] [-v]``.
Like the CLI's own commands it imports its work only when run, so that ``reconciler --help``
and the other commands do not pay for loading the exporter.

Nothing goes to stdout (there is no report to pipe): the summary, warnings and the list of
removed stale files go to stderr. Refusals raise :class:`reconciler.export.ExportError`, which
the CLI's ``main`` prints as ``error: ...`` with exit 1.
"""

from __future__ import annotations

import click


def _split_kinds(values: tuple[str, ...]) -> list[str] | None:
    from reconciler.export import ExportError

    if not values:
        return None
    names = [part.strip() for value in values for part in value.split(",")]
    if not any(names):
        raise ExportError("--kinds is empty; give kind names such as accounts,currencies")
    return [n for n in names if n]


def register(cli: click.Group) -> None:
    """Add the ``export`` command to ``cli``."""

    @cli.command("export")
    @click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
                  help="Directory to write the manifests into (created if missing; must be empty unless --force).")
    @click.option("--backend", envvar="RECONCILER_BACKEND", default=None, show_envvar=True,
                  help="local[:PATH] (default local:.reconciler/local.sqlite) or m3ter[:BASE_URL].")
    @click.option("--kinds", "kind_values", multiple=True, metavar="LIST",
                  help="Only these kinds, comma-separated (e.g. accounts,currencies); default: all.")
    @click.option("--force", is_flag=True,
                  help="Write into a non-empty DIR: replace reconciler's exported files there and remove stale "
                       "ones (only files starting with the export header); nothing else is touched.")
    @click.option("-v", "--verbose", is_flag=True, help="Trace API requests on stderr (secrets redacted).")
    def export_command(out_dir: str, backend: str | None, kind_values: tuple[str, ...], force: bool,
                       verbose: bool) -> None:
        """Write manifests for the whole organization (a starting point for a repository)."""
        from reconciler import services
        from reconciler.export import check_out_dir, export_organization, resolve_kinds
        from reconciler.safetext import safe

        kinds = _split_kinds(kind_values)
        if kinds is not None:
            resolve_kinds(kinds)  # refuse a typo before opening (or creating) an organization
        check_out_dir(out_dir, force=force)
        handle = services.open_configured_backend(backend, verbose=verbose)
        with handle:
            result = export_organization(handle, out_dir, kinds=kinds, force=force)
        for warning in result.warnings:
            click.echo(f"warning: {safe(warning)}", err=True)
        if verbose:
            for rel in result.removed:
                click.echo(f"removed stale {safe(rel)}", err=True)
        click.echo(safe(result.summary_line()), err=True)
