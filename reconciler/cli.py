"""Command line: parse, call, render, exit code. No business logic lives here.

Output discipline (DESIGN §4): the plan or report goes to stdout and nothing else does;
progress, warnings and diagnostics go to stderr. Exit codes: 0 ok / nothing to do,
1 error, 2 changes pending or drift found.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any, AnyStr

import click

from reconciler import __version__
from reconciler.diagnostics import Diagnostic, ReconcilerError, sort_key
from reconciler.safetext import masking_output, safe, visible

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2


# Set by ``--format github``: diagnostics become workflow commands on stdout (a runner reads
# them only there) instead of lines on stderr.
_ANNOTATE: ContextVar[bool] = ContextVar("reconciler_annotate", default=False)


@contextlib.contextmanager
def _annotating(on: bool) -> Iterator[None]:
    token = _ANNOTATE.set(on)
    try:
        yield
    finally:
        _ANNOTATE.reset(token)


def _print_diagnostics(diagnostics: Sequence[Diagnostic]) -> tuple[int, int]:
    """Errors first, then warnings, each ``FILE:LINE:COL: severity: message`` on stderr
    (with ``--format github``: ``::error file=F,line=L,col=C::message`` on stdout)."""
    errors = warnings = 0
    if _ANNOTATE.get() and diagnostics:
        from reconciler.render.github import render_annotations

        click.echo(render_annotations(diagnostics, workspace=os.environ.get("GITHUB_WORKSPACE")), nl=False)
    for d in sorted(diagnostics, key=sort_key):
        if not _ANNOTATE.get():
            click.echo(d.display(), err=True)
        if d.is_error:
            errors += 1
        else:
            warnings += 1
    return errors, warnings


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="reconciler")
def cli() -> None:
    """Configuration as code for an m3ter organization."""


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=True))
@click.option("--backend", default=None,
              help="Also resolve references against this organization: local[:PATH] or m3ter[:BASE_URL].")
@click.option("--format", "fmt", type=click.Choice(["text", "github"]), default="text", show_default=True,
              help="github: problems as GitHub Actions annotations (::error file=F,line=L,col=C::...) on stdout.")
@click.option("-v", "--verbose", is_flag=True, help="Trace API requests on stderr (secrets redacted).")
def validate(paths: tuple[str, ...], backend: str | None, fmt: str, verbose: bool) -> None:
    """Check manifests offline: every problem at once, FILE:LINE:COL: message."""
    from reconciler.services import validate_paths

    result = validate_paths(list(paths), backend_spec=backend, verbose=verbose)
    with _annotating(fmt == "github"):
        errors, warnings = _print_diagnostics(result.diagnostics)
    objects = sum(1 for _ in result.manifests) if result.manifests else 0
    files = len(result.manifests.files) if result.manifests else 0
    if errors:
        click.echo(
            f"Invalid: {_plural(errors, 'error')}, {_plural(warnings, 'warning')} in {_plural(files, 'file')}.",
            err=True,
        )
        sys.exit(EXIT_ERROR)
    click.echo(
        f"Valid: {_plural(objects, 'object')} in {_plural(files, 'file')}, {_plural(warnings, 'warning')}.",
        err=True,
    )


_backend_option = click.option(
    "--backend", envvar="RECONCILER_BACKEND", default=None, show_envvar=True,
    help="local[:PATH] (default local:.reconciler/local.sqlite) or m3ter[:BASE_URL].",
)
_verbose_option = click.option("-v", "--verbose", is_flag=True, help="Trace API requests on stderr (secrets redacted).")


def _parse_only(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> Any:
    from reconciler import services

    try:
        return services.parse_only(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


_only_option = click.option(
    "--only", "only", multiple=True, metavar="KIND[/CODE]", callback=_parse_only,
    help="Partial plan: only these objects (repeatable) and what they depend on; nothing outside is "
         "changed or pruned.",
)


def _redact_default() -> bool:
    """PII redaction is on by default in CI (the ``CI`` variable is set there)."""
    return bool(os.environ.get("CI"))


_redact_option = click.option(
    "--redact-pii/--no-redact-pii", default=None,
    help="Mask account name, e-mail and address in the output (default: on when CI is set).",
)


def _colour() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _render(doc: dict[str, Any], fmt: str, *, title: str = "reconciler plan") -> Iterator[str]:
    """The plan as text or markdown, in pieces: text streams change by change, so a
    100k-change plan is never held as one string (markdown is bounded by its size limit).
    JSON is written as bytes (:func:`_emit_json`)."""
    from reconciler import render
    from reconciler.render.text import iter_text

    if fmt == "markdown":
        return iter([render.render_markdown(doc, title=title)])
    return iter_text(doc, colour=_colour())


# Output is written in chunks of about this size: one click.echo (write and flush) per piece
# cost seconds on a 100k-change plan (a third of a text plan's time). A chunk never splits a
# piece, so a credential inside one value still reaches the masking stream in one write.
_CHUNK = 1 << 20


def _chunked(pieces: Iterable[AnyStr], empty: AnyStr) -> Iterator[AnyStr]:
    buffer: list[AnyStr] = []
    size = 0
    for piece in pieces:
        buffer.append(piece)
        size += len(piece)
        if size >= _CHUNK:
            yield empty.join(buffer)
            buffer.clear()
            size = 0
    if buffer:
        yield empty.join(buffer)


def _emit(pieces: Iterable[str], *, err: bool = False) -> None:
    for chunk in _chunked(pieces, ""):
        click.echo(chunk, nl=False, err=err)


def _emit_json(doc: dict[str, Any]) -> None:
    """The JSON document on stdout: its UTF-8 bytes go straight to the binary stream under
    stdout (the change lines of an unredacted plan are the bytes its digest hashed); a
    stream without one (credential masking, a test's capture) gets text."""
    from reconciler.render.json_format import iter_json_lines

    stream = sys.stdout
    binary = getattr(stream, "buffer", None)
    if binary is None:
        for chunk in _chunked(iter_json_lines(doc), b""):
            stream.write(chunk.decode("utf-8"))
        stream.flush()
        return
    stream.flush()  # anything written as text before goes first
    for chunk in _chunked(iter_json_lines(doc), b""):
        binary.write(chunk)
    binary.flush()


def _fail_on_diagnostics(diagnostics: Sequence[Diagnostic]) -> None:
    errors, warnings = _print_diagnostics(diagnostics)
    if errors:
        click.echo(f"Invalid: {_plural(errors, 'error')}, {_plural(warnings, 'warning')}; nothing was changed.",
                   err=True)
        sys.exit(EXIT_ERROR)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@_backend_option
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "github"]), default="text",
              show_default=True,
              help="github: problems as GitHub Actions annotations on stdout, the text plan on stderr.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, writable=True),
              help="Save the plan (unredacted, with live versions) for apply --plan.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when nothing to do, 2 when changes are pending.")
@click.option("--force", is_flag=True, help="Accept removals above settings.safety.maxRemovePercent.")
@_only_option
@_redact_option
@_verbose_option
def plan(paths: tuple[str, ...], backend: str | None, fmt: str, out_file: str | None, detailed_exitcode: bool,
         force: bool, only: Any, redact_pii: bool | None, verbose: bool) -> None:
    """Show what apply would change in the organization."""
    from reconciler import services
    from reconciler.render import plan_document, redact_document
    from reconciler.render.document import release_encoded

    redact = _redact_default() if redact_pii is None else redact_pii
    with _annotating(fmt == "github"):
        outcome = _load_plan(paths, backend, verbose=verbose, only=only)
    assert outcome.plan is not None
    result = outcome.plan
    save = bool(out_file) and not result.blockers
    # One document (one digest over every change): shown redacted if asked, saved as it is.
    # The unredacted JSON and the saved file write each change as the bytes the digest hashed.
    plain = plan_document(result, extra_warnings=outcome.load_warnings,
                          keep_encoded=save or (fmt == "json" and not redact))
    doc = redact_document(plain) if redact else plain
    if fmt == "github":
        from reconciler.render.github import render_plan_annotations

        # Workflow commands are read from stdout only: the plan itself goes to the log on stderr.
        click.echo(render_plan_annotations(doc, located=outcome.load_warnings), nl=False)
        _emit(_render(doc, "text"), err=True)
    elif fmt == "json":
        _emit_json(doc)
    else:
        _emit(_render(doc, fmt))
    if save:
        assert out_file is not None
        digest = services.save_document(plain, out_file)
        shown = safe(out_file)
        click.echo(f"Saved plan to {shown}; apply exactly it with: reconciler apply --plan {shown} "
                   f"--expect-digest {digest}", err=True)
    release_encoded(plain)
    if result.blockers:
        for blocker in result.blockers:
            click.echo(f"error: {safe(blocker)}", err=True)
        click.echo("The plan cannot succeed as it stands; nothing can be applied until the manifests change.",
                   err=True)
        sys.exit(EXIT_ERROR)
    if result.refusals and not force:
        for refusal in result.refusals:
            click.echo(f"error: {safe(refusal)}", err=True)
        sys.exit(EXIT_ERROR)
    if detailed_exitcode and result.has_changes:
        sys.exit(EXIT_CHANGES)


def _load_plan(paths: Sequence[str], backend_spec: str | None, *, verbose: bool = False, only: Any = None) -> Any:
    from reconciler import services

    loaded = _load_manifests_or_exit(paths)
    with services.open_configured_backend(backend_spec, verbose=verbose) as backend:
        return _plan_or_exit(loaded, backend, only=only)


def _plan_or_exit(loaded: Any, backend: Any, *, only: Any = None) -> Any:
    """Plan loaded manifests against ``backend``; errors found only against the live
    organization (a reference it does not hold) end the command, warnings are printed."""
    from reconciler import services
    from reconciler.progress import ProgressLine

    with ProgressLine("Reading the organization") as progress:
        outcome = services.plan_loaded(loaded, backend, only=only, progress=progress)
    if not outcome.ok:
        _fail_on_diagnostics(outcome.diagnostics)
    _print_diagnostics([d for d in outcome.diagnostics if not d.is_error])
    return outcome


def _load_manifests_or_exit(paths: Sequence[str]) -> Any:
    """Load and check manifests before any backend is opened: bad input writes nothing."""
    from reconciler.manifest import load_manifests

    loaded = load_manifests(list(paths))
    if not loaded.ok:
        _fail_on_diagnostics(loaded.diagnostics)
    return loaded


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False),
              help="Apply a saved plan exactly, or nothing if anything it touches moved.")
@click.option("--expect-digest", default=None, metavar="DIGEST",
              help="With --plan: refuse unless the saved plan's digest is DIGEST (the one a reviewer approved).")
@_backend_option
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation (needed without a terminal).")
@click.option("--allow-delete", is_flag=True, help="Permit deleting accounts.")
@click.option("--force", is_flag=True, help="Accept removals above settings.safety.maxRemovePercent.")
@click.option("--parallelism", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Independent changes applied at once.")
@click.option("--rate-limit", type=click.FloatRange(min=0.1), default=50.0, show_default=True,
              help="Requests per second to the m3ter API.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="The result: text on stderr, or json: also one JSON document on stdout (the plan then "
                   "goes to stderr).")
@_only_option
@_redact_option
@_verbose_option
def apply(paths: tuple[str, ...], plan_file: str | None, expect_digest: str | None, backend: str | None,
          auto_approve: bool, allow_delete: bool, force: bool, parallelism: int, rate_limit: float, fmt: str,
          only: Any, redact_pii: bool | None, verbose: bool) -> None:
    """Make the organization match the manifests (or a saved plan).

    SIGINT or SIGTERM while changes are applied starts no new change, lets the ones in flight
    finish, lists what was applied, failed and not started, and exits 130 (143 for SIGTERM);
    a second one exits at once."""
    from reconciler import interrupt, services
    from reconciler.apply import ApplyResult
    from reconciler.progress import ProgressLine
    from reconciler.render import plan_document
    from reconciler.render.document import redact_document

    if bool(paths) == bool(plan_file):
        raise click.UsageError("give manifest PATHs or --plan FILE (one of the two)")
    if expect_digest and not plan_file:
        raise click.UsageError("--expect-digest needs --plan FILE")
    if only and plan_file:
        raise click.UsageError("--only plans from manifests; a saved plan keeps the selection it was made with")
    if not auto_approve and not sys.stdin.isatty():
        raise click.UsageError("not running on a terminal: pass --auto-approve to apply without confirmation")
    redact = _redact_default() if redact_pii is None else redact_pii
    saved = services.read_saved_plan(plan_file, expect_digest=expect_digest) if plan_file else None
    loaded = _load_manifests_or_exit(paths) if saved is None else None
    handle = services.open_configured_backend(backend, rate_limit=rate_limit, parallelism=parallelism,
                                              verbose=verbose)
    with handle:
        if saved is not None:
            result = services.check_saved_plan(saved, handle)
            # Show the document that was reviewed (its digest included), now proven current.
            shown = redact_document(saved.doc) if redact else saved.doc
        else:
            assert loaded is not None
            outcome = _plan_or_exit(loaded, handle, only=only)
            assert outcome.plan is not None
            result = outcome.plan
            shown = plan_document(result, redact_pii=redact, extra_warnings=outcome.load_warnings)
        # With --format json stdout holds only the result document, so the plan goes to stderr.
        _emit(_render(shown, "text"), err=fmt == "json")
        if not result.has_changes:
            click.echo("Nothing to do.", err=True)
            if fmt == "json":
                click.echo(_json_result(ApplyResult()))
            return
        services.check_apply_allowed(result, force=force, allow_delete=allow_delete)
        if not auto_approve and not click.confirm("Apply these changes?", default=False, err=True):
            click.echo("Nothing was changed.", err=True)
            sys.exit(EXIT_ERROR)
        with ProgressLine("Applying") as progress, interrupt.stop_on_signals() as stop:
            applied = services.run_apply(result, handle, parallelism=parallelism, progress=progress, stop=stop)
    _report_apply(applied)
    if fmt == "json":
        click.echo(_json_result(applied))
    if applied.interrupted is not None:
        click.echo("Run apply again to finish: the next plan shows exactly the changes not applied.", err=True)
        sys.exit(interrupt.stop_exit_code(stop) or EXIT_ERROR)
    if not applied.ok:
        click.echo("Some changes did not apply; fix the cause and run apply again: it converges.", err=True)
        sys.exit(EXIT_ERROR)


def _json_result(applied: Any) -> str:
    import json

    return json.dumps(applied.document(), indent=2, ensure_ascii=False)


def _report_apply(applied: Any) -> None:
    """Outcomes on stderr: after an interrupt every change is listed, grouped by status, so
    the person knows exactly what happened; otherwise only what needs attention."""
    from reconciler.apply import STATUSES
    from reconciler.render.values import change_label

    if applied.interrupted is not None:
        shown = sorted(applied.outcomes, key=lambda o: (STATUSES.index(o.status), o.index))
    else:
        shown = [o for o in applied.outcomes if o.status != "applied" or o.message]
    for o in shown:
        label = change_label({"kind": o.change.kind, "key": o.change.key})
        line = f"{o.status.replace('_', ' ')}: {o.change.action} {label}"
        click.echo(f"{line}: {safe(o.message)}" if o.message and o.status != "not_started" else line, err=True)
    click.echo(applied.summary_line(), err=True)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@_backend_option
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@_only_option
@_redact_option
@_verbose_option
def drift(paths: tuple[str, ...], backend: str | None, fmt: str, only: Any, redact_pii: bool | None,
          verbose: bool) -> None:
    """Report hand changes: exit 0 in sync, 2 drift found, 1 error."""
    from reconciler import render
    from reconciler.drift import drift_document
    from reconciler.render.drift import render_drift_markdown, render_drift_text

    redact = _redact_default() if redact_pii is None else redact_pii
    outcome = _load_plan(paths, backend, verbose=verbose, only=only)
    doc = drift_document(outcome.plan, redact_pii=redact)
    if fmt == "json":
        click.echo(render.render_json(doc), nl=False)
    elif fmt == "markdown":
        click.echo(render_drift_markdown(doc), nl=False)
    else:
        click.echo(render_drift_text(doc, colour=_colour()), nl=False)
    if not doc["inSync"]:
        sys.exit(EXIT_CHANGES)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--db", "db_path", default=".reconciler/emulator.sqlite", show_default=True)
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0)
@click.option("--rate-limit", type=click.FloatRange(min=0), default=50.0, show_default=True,
              help="Per-organization requests per calendar second, as m3ter enforces (0: off).")
@click.option("--fail-rate", type=click.FloatRange(0, 1), default=0.0, help="Share of API requests failed on purpose.")
@click.option("--token-ttl", type=click.IntRange(min=1), default=18000, show_default=True)
@click.option("--org-id", "org_ids", multiple=True, help="Organization served (repeatable; default M3TER_ORG_ID).")
@click.option("--api-key", default=None, help="Accepted client id (default M3TER_API_KEY).")
@click.option("--api-secret", default=None, help="Accepted client secret (default M3TER_API_SECRET).")
@click.option("--seed", type=int, default=None, help="Seed for injected failures (repeatable runs).")
@click.option("--extra-fields", is_flag=True,
              help="Add undocumented fields (as a newer m3ter would return) to every object; PUT keeps them.")
@click.option("--archived-true", type=click.Choice(["document", "only", "include"]), default="document",
              show_default=True, help="How picklist lists read archived=true (document: as each endpoint says).")
@click.option("--archived-absent", type=click.Choice(["exclude", "include"]), default="exclude",
              show_default=True, help="Whether picklist lists without archived return archived objects.")
def emulator(host: str, port: int, db_path: str, latency_ms: float, rate_limit: float, fail_rate: float,
             token_ttl: int, org_ids: tuple[str, ...], api_key: str | None, api_secret: str | None,
             seed: int | None, extra_fields: bool, archived_true: str, archived_absent: str) -> None:
    """Serve a local stand-in for the m3ter Config API subset (needs the 'emulator' extra)."""
    try:
        from reconciler.emulator.server import EmulatorConfig, serve
    except ImportError as exc:  # starlette/uvicorn are an optional extra
        raise ReconcilerError(
            f"the emulator needs its extra: pip install 'm3ter-reconciler[emulator]' ({exc.name} is missing)"
        ) from None
    config = EmulatorConfig(
        host=host, port=port, db=db_path, latency_ms=latency_ms, rate_limit=rate_limit or None,
        fail_rate=fail_rate, fail_seed=seed, token_ttl=token_ttl, org_ids=org_ids, api_key=api_key,
        api_secret=api_secret, extra_fields=extra_fields, archived_true=archived_true,
        archived_absent=archived_absent,
    )
    try:
        serve(config)
    except (ValueError, OSError) as exc:
        raise ReconcilerError(f"emulator: {exc}") from None


@masking_output
def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: any ReconcilerError becomes a one-line message and exit 1, never a
    traceback; Ctrl-C and SIGTERM (outside apply, which reports them itself) one line and
    exit 130 or 143. Error text may carry file names, live values or an API's words: shown
    through ``safe()`` (messages written over several lines keep their line breaks)."""
    from reconciler import interrupt

    # reconciler's models need no pydantic plugins, and looking for them (importlib.metadata
    # over every installed distribution) costs ~15 ms of each command; only this process
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        with interrupt.terminate_raises():
            cli.main(args=list(argv) if argv is not None else None, prog_name="reconciler", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        # click quotes the values it names with repr (escaped already) but not option names
        # (click types ``message`` as Final; this is the one place its text is rewritten)
        vars(exc)["message"] = visible(exc.message, multiline=True)
        exc.show()
        sys.exit(EXIT_ERROR if exc.exit_code == 2 else exc.exit_code)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            # click turns Ctrl-C into Abort (after ending the line on stderr): it is an interrupt
            click.echo("Interrupted.", err=True)
            sys.exit(interrupt.exit_code(signal.SIGINT))
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_ERROR)
    except ReconcilerError as exc:
        click.echo(f"error: {safe(str(exc), multiline=True)}", err=True)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(interrupt.exit_code(signal.SIGINT))
    except interrupt.Terminated as exc:
        click.echo("Terminated.", err=True)
        sys.exit(interrupt.exit_code(exc.signum))


def _register_plugins() -> None:
    """Commands that live in their own modules (their logic is not the CLI's)."""
    from reconciler.export_cli import register as register_export

    register_export(cli)


_register_plugins()
