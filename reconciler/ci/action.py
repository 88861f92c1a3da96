"""What the GitHub Action (``action.yml``) does, in Python rather than in shell.

``python -m reconciler.ci plan|apply|drift`` reads the action's inputs from ``INPUT_*``
environment variables (``action.yml`` passes every input through ``env:``, never by
expanding ``${{ }}`` inside a script), runs ``reconciler`` as a child process for each step,
and writes the step outputs to ``$GITHUB_OUTPUT``.

- ``plan``: annotations (``validate --format github``), then ``plan --format markdown --out
  FILE --detailed-exitcode``; the markdown goes to the job summary and, on a pull request,
  into the one plan comment of this organization and path set, edited in place.
- ``apply``: plans the pushed commit again and applies that saved plan with
  ``--expect-digest`` set to the digest a reviewer saw: the one in the plan comment of the
  pull request merged by this commit (or the ``expect-digest`` input). Two plans with one
  digest are the same plan (same changes, same live ids and versions), so this applies
  exactly what was reviewed; a different digest is refused, naming both and the likely
  reasons, and nothing is applied.
- ``drift``: the drift report to the job summary and a file; outputs for the job to act on.

Exit status: 1 when the command failed or was refused, otherwise 0 (pending changes and
drift are outputs, not failures: the workflow decides). Child output is shown between
``::stop-commands::`` markers, so no text from a manifest or the organization can act as a
workflow command; only the annotations of ``validate --format github`` are let through.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.ci import github as gh
from reconciler.ci.comment import Marker, PlanComment, error_lines, org_label, paths_key, render_comment
from reconciler.diagnostics import ReconcilerError
from reconciler.safetext import safe

COMMANDS = ("plan", "apply", "drift")
EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Inputs:
    """The action's inputs, as ``action.yml`` hands them over."""

    command: str
    paths: list[str]
    backend: str
    args: list[str]
    working_directory: str
    comment: bool
    comment_author: str | None
    expect_digest: str
    plan_file: str
    artifact_name: str

    @classmethod
    def from_env(cls, env: Mapping[str, str], command: str | None = None) -> Inputs:
        name = command or env.get("INPUT_COMMAND", "")
        if name not in COMMANDS:
            raise ReconcilerError(f"command must be one of {', '.join(COMMANDS)}, not {name!r}")
        try:
            paths = shlex.split(gh.env_or(env, "INPUT_PATHS", "manifests/"))
            args = shlex.split(env.get("INPUT_ARGS", ""))
        except ValueError as exc:
            raise ReconcilerError(f"paths or args: {exc} (they are split like a shell would)") from None
        author = env.get("INPUT_COMMENT_AUTHOR", gh.DEFAULT_COMMENT_AUTHOR)
        return cls(
            command=name,
            paths=paths,
            backend=env.get("INPUT_BACKEND", ""),
            args=args,
            working_directory=gh.env_or(env, "INPUT_WORKING_DIRECTORY", "."),
            comment=gh.env_or(env, "INPUT_COMMENT", "true").strip().lower() in ("true", "1", "yes"),
            comment_author=author or None,
            expect_digest=env.get("INPUT_EXPECT_DIGEST", "").strip(),
            plan_file=env.get("INPUT_PLAN_FILE", "").strip(),
            artifact_name=env.get("INPUT_ARTIFACT_NAME", "").strip(),
        )

    def backend_args(self) -> list[str]:
        return ["--backend", self.backend] if self.backend else []

    def organization(self, env: Mapping[str, str]) -> str:
        """The organization the command talks to, known before anything runs (so a failed
        plan updates the same comment as a good one): ``M3TER_ORG_ID`` for the m3ter
        backend, ``local`` for the embedded one; the same id the plan names."""
        spec = self.backend or env.get("RECONCILER_BACKEND", "") or "local"
        if spec.startswith("m3ter"):
            return env.get("M3TER_ORG_ID", "") or "unknown"
        return "local"


@dataclass(frozen=True, slots=True)
class Ran:
    code: int
    stdout: str
    stderr: str


class Runner:
    """Runs reconciler steps and keeps what the action reports."""

    def __init__(self, inputs: Inputs, env: Mapping[str, str]) -> None:
        self.inputs = inputs
        self.env = dict(env)
        self.event = gh.Event.from_env(env)
        self.org = inputs.organization(env)
        self.org_label = org_label(self.org)
        self.paths_key = paths_key(inputs.paths, inputs.working_directory)
        self.outputs: dict[str, str] = {}
        temp = Path(gh.env_or(env, "RUNNER_TEMP", tempfile.gettempdir()))
        self.artifact = inputs.artifact_name or f"reconciler-{inputs.command}-{self.org_label}-{self.paths_key}"
        self.workdir = temp / "reconciler" / self.artifact
        self.workdir.mkdir(parents=True, exist_ok=True)

    # -- plumbing

    def log(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def reconciler(self, *args: str) -> Ran:
        """``reconciler ARGS`` in a child process. The child never sees the GitHub token (it
        has no use for it), and its output is shown with workflow commands switched off."""
        child_env = {k: v for k, v in self.env.items() if k != "GITHUB_TOKEN" and not k.startswith("INPUT_")}
        shown = " ".join(shlex.quote(safe(a)) for a in args)
        self.log(f"$ reconciler {shown}")
        proc = subprocess.run(
            [sys.executable, "-m", "reconciler", *args],
            env=child_env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            encoding="utf-8", errors="replace", check=False,
        )
        return Ran(proc.returncode, proc.stdout, proc.stderr)

    def show(self, text: str) -> None:
        """Child output in the log, inert: between ``::stop-commands::`` and its end token."""
        if not text:
            return
        token = uuid.uuid4().hex
        sys.stdout.write(f"::stop-commands::{token}\n")
        sys.stdout.flush()
        sys.stderr.write(text if text.endswith("\n") else text + "\n")
        sys.stderr.flush()
        sys.stdout.write(f"::{token}::\n")
        sys.stdout.flush()

    def github(self) -> gh.GitHub:
        return gh.api_from_env(self.env, self.event.repository)

    def finish(self, code: int) -> int:
        self.outputs.setdefault("exitcode", str(code))
        self.outputs.setdefault("has-changes", "false")
        for name in ("digest", "plan-file", "report-file", "comment-url", "reviewed-digest"):
            self.outputs.setdefault(name, "")
        self.outputs["artifact-name"] = self.artifact
        gh.write_outputs(self.outputs, self.env.get("GITHUB_OUTPUT"))
        return code

    # -- plan

    def plan(self) -> int:
        inputs = self.inputs
        validated = self.reconciler("validate", *inputs.paths, "--format", "github")
        sys.stdout.write(validated.stdout)  # the annotations: the one output let through as commands
        sys.stdout.flush()
        self.show(validated.stderr)
        plan_path = self.workdir / "plan.json"
        plan_path.unlink(missing_ok=True)
        ran = self.reconciler("plan", *inputs.paths, *inputs.backend_args(), "--format", "markdown",
                              "--out", str(plan_path), "--detailed-exitcode", *inputs.args)
        self.show(ran.stderr)
        ok = ran.code in (EXIT_OK, EXIT_CHANGES)
        digest = saved_digest(plan_path) if ok and plan_path.is_file() else None
        self.outputs.update({
            "exitcode": str(ran.code),
            "has-changes": "true" if ran.code == EXIT_CHANGES else "false",
            "digest": digest or "",
            "plan-file": str(plan_path) if digest else "",
        })
        heading = f"### reconciler plan: {self.org} ({', '.join(inputs.paths)})\n\n"
        gh.append_summary(heading + (ran.stdout or "_No plan: see the log._\n"), self.env.get("GITHUB_STEP_SUMMARY"))
        if inputs.comment and self.event.pull_number is not None:
            marker = Marker(self.org_label, self.paths_key, digest, self.event.head_sha or self.event.sha or None,
                            self.event.run_id)
            body = render_comment(PlanComment(
                marker=marker, organization=self.org, paths=inputs.paths, exitcode=ran.code,
                plan_markdown=ran.stdout, run_url=self.event.run_url,
                errors=[] if ok else error_lines(ran.stderr), artifact=self.artifact if digest else None,
            ))
            with self.github() as api:
                how, comment = gh.upsert_plan_comment(api, self.event.pull_number, body, self.org_label,
                                                      self.paths_key, inputs.comment_author)
            self.outputs["comment-url"] = comment.url
            self.log(f"Plan comment {how} on pull request #{self.event.pull_number}: {safe(comment.url)}")
        elif inputs.comment:
            self.log("Not a pull request: no plan comment.")
        return self.finish(EXIT_OK if ok else EXIT_ERROR)

    # -- apply

    def reviewed_digest(self) -> tuple[str | None, str]:
        """The digest a reviewer saw and where it came from (or None and why there is none)."""
        if self.inputs.expect_digest:
            return self.inputs.expect_digest, "the expect-digest input"
        with self.github() as api:
            pull = gh.merged_pull_request(api, self.event.sha)
            if pull is None:
                return None, (f"commit {self.event.sha[:12]} is not the merge of a pull request, so no plan was "
                              "reviewed for it; change the organization through a pull request, or pass "
                              "expect-digest")
            number = int(pull["number"])
            found = gh.find_plan_comment(api, number, self.org_label, self.paths_key, self.inputs.comment_author)
        if found is None:
            return None, (f"pull request #{number} has no plan comment for organization {self.org} and these "
                          "paths (was the plan job skipped or its comment deleted?)")
        comment, marker = found
        head = str((pull.get("head") or {}).get("sha") or "")
        where = f"the plan comment of pull request #{number} ({comment.url})"
        if marker.sha and head and marker.sha != head:
            where += (f"; note: it shows the plan of commit {marker.sha[:12]}, not of the pull request's "
                      f"last commit {head[:12]}")
        if marker.digest is None:
            return None, f"{where} holds no digest: its last plan failed"
        return marker.digest, where

    def apply(self) -> int:
        inputs = self.inputs
        if inputs.plan_file:
            plan_path = Path(inputs.plan_file)
            if not plan_path.is_file():
                raise ReconcilerError(f"plan-file {inputs.plan_file!r} does not exist")
            doc = json.loads(plan_path.read_text(encoding="utf-8"))
            new, has_changes = str(doc.get("digest", "")), bool(doc.get("changes"))
        else:
            plan_path = self.workdir / "plan.json"
            plan_path.unlink(missing_ok=True)
            force = ["--force"] if "--force" in inputs.args else []
            ran = self.reconciler("plan", *inputs.paths, *inputs.backend_args(), "--out", str(plan_path),
                                  "--detailed-exitcode", *force)
            self.show(ran.stdout + ran.stderr)
            if ran.code not in (EXIT_OK, EXIT_CHANGES) or not plan_path.is_file():
                self.log("error: the plan failed; nothing was applied.")
                return self.finish(EXIT_ERROR)
            new, has_changes = saved_digest(plan_path) or "", ran.code == EXIT_CHANGES
        self.outputs.update({"digest": new, "plan-file": str(plan_path),
                             "has-changes": "true" if has_changes else "false"})
        if not has_changes:
            self.log("Nothing to apply: the organization already matches the manifests.")
            return self.finish(EXIT_OK)
        reviewed, source = self.reviewed_digest()
        self.outputs["reviewed-digest"] = reviewed or ""
        if reviewed is None:
            self.log(f"error: refusing to apply: there is no reviewed plan: {safe(source)}. Nothing was applied.")
            return self.finish(EXIT_ERROR)
        if reviewed != new:
            self.log(refusal(new, reviewed, source))
            return self.finish(EXIT_ERROR)
        self.log(f"The plan to apply has the reviewed digest {reviewed} (from {safe(source)}).")
        ran = self.reconciler("apply", "--plan", str(plan_path), "--expect-digest", reviewed, "--auto-approve",
                              *inputs.backend_args(), *inputs.args)
        self.show(ran.stdout + ran.stderr)
        self.outputs["exitcode"] = str(ran.code)
        return self.finish(EXIT_OK if ran.code == EXIT_OK else EXIT_ERROR)

    # -- drift

    def drift(self) -> int:
        inputs = self.inputs
        report = self.workdir / "drift.md"
        ran = self.reconciler("drift", *inputs.paths, *inputs.backend_args(), "--format", "markdown", *inputs.args)
        self.show(ran.stderr)
        report.write_text(ran.stdout, encoding="utf-8")
        self.outputs.update({
            "exitcode": str(ran.code),
            "has-changes": "true" if ran.code == EXIT_CHANGES else "false",
            "report-file": str(report),
        })
        heading = f"### reconciler drift: {self.org} ({', '.join(inputs.paths)})\n\n"
        gh.append_summary(heading + (ran.stdout or "_No report: see the log._\n"), self.env.get("GITHUB_STEP_SUMMARY"))
        return self.finish(EXIT_OK if ran.code in (EXIT_OK, EXIT_CHANGES) else EXIT_ERROR)


def refusal(new: str, reviewed: str, source: str) -> str:
    """Why a plan other than the reviewed one is not applied, in words an on-call engineer
    can act on."""
    return (
        "error: refusing to apply: the plan of this commit is not the plan that was reviewed.\n"
        f"  planned now:  {new}\n"
        f"  reviewed:     {reviewed} (from {safe(source)})\n"
        "The organization changed since the review (someone edited it by hand, or another apply ran), or the "
        "default branch now holds manifest changes the reviewed plan did not include (another pull request "
        "merged after this one was planned, or its last commit was not planned). Nothing was applied. "
        "Plan again on a pull request and review the new plan."
    )


def saved_digest(path: Path) -> str | None:
    try:
        doc: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    digest = doc.get("digest") if isinstance(doc, dict) else None
    return digest if isinstance(digest, str) else None


def run(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Entry point; returns the exit status. Errors are one line, never a traceback."""
    environ = dict(os.environ if env is None else env)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        inputs = Inputs.from_env(environ, args[0] if args else None)
        runner = Runner(inputs, environ)
        return int(getattr(runner, inputs.command)())
    except ReconcilerError as exc:
        print(f"error: {safe(str(exc), multiline=True)}", file=sys.stderr, flush=True)
        gh.write_outputs({"exitcode": "1"}, environ.get("GITHUB_OUTPUT"))
        return EXIT_ERROR
