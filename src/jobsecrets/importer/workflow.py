"""GitHub workflow files: find the vault-action and AWS action steps, and rewrite them.

Every step that ``uses:`` hashicorp/vault-action or aws-actions/aws-secretsmanager-get-secrets
(any tag, branch or SHA pin) becomes one jobsecrets ``actions/inject`` step in the same place,
with the same ``name:``/``id:``/``if:``, resolving only that step's variables (``only:``). The
values reach later steps the same way (``$GITHUB_ENV``, and step outputs where a later step reads
``steps.ID.outputs``). Values the old step took from expressions (``${{ secrets.VAULT_TOKEN }}``,
a ``url:`` from ``vars``) go to the new step's ``env:`` under the names jobsecrets reads.
"""

from __future__ import annotations

__all__ = ["AWS_ACTION", "VAULT_ACTION", "StepRewrite", "read_workflow", "rewrite_steps"]

import re
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.comments import CommentedMap

from . import aws_action, vault_action
from .exprs import has_expression
from .model import Backend, ImportError_, Job, Note, Where
from .yamlio import Document, key_line, move_trailing_comment, node_line, value_line

VAULT_ACTION = re.compile(r"^\s*hashicorp/vault-action@\S+\s*$")
AWS_ACTION = re.compile(r"^\s*aws-actions/aws-secretsmanager-get-secrets@\S+\s*$")
AWS_CREDENTIALS = re.compile(r"^\s*aws-actions/configure-aws-credentials@\S+\s*$")
_OUTPUT_REF = r"steps\.{id}\.outputs\.{name}\b"


@dataclass
class StepRewrite:
    """One step to replace by the inject action."""

    job: Job
    job_body: Any  # the job's (or composite action's runs:) CommentedMap
    step: Any  # the step's CommentedMap
    names: list[str]
    where: Where
    step_env: dict[str, str] = field(default_factory=dict)
    export_env: bool = True
    outputs: dict[str, str] = field(default_factory=dict)  # old output name -> new name


def _with(step: Any, where: Where) -> dict[str, Any]:
    inputs = step.get("with")
    if inputs is None:
        return {}
    if not isinstance(inputs, dict):
        raise ImportError_.at(where, "'with:' of the step is not a mapping")
    return inputs


def read_workflow(doc: Document) -> tuple[list[Job], list[Note], list[StepRewrite]]:
    """Jobs with their secrets, the notes, and the steps to rewrite, of one workflow file."""
    data = doc.data
    if isinstance(data, dict) and isinstance(data.get("runs"), dict):
        # A composite action (action.yml): its steps are read like one job's.
        job_map: Any = {"composite": data["runs"]}
        lines: Any = data
    elif isinstance(data, dict) and isinstance(data.get("jobs"), dict):
        job_map = lines = data["jobs"]
    else:
        raise ImportError_.at(doc.where(1), "not a GitHub workflow (no 'jobs:' mapping)")
    jobs: list[Job] = []
    notes: list[Note] = []
    rewrites: list[StepRewrite] = []
    for job_id, body in job_map.items():
        if not isinstance(body, dict) or not isinstance(body.get("steps"), list):
            continue  # a reusable-workflow call or an empty job: nothing of ours
        job = Job(
            doc.path,
            str(job_id),
            doc.where(key_line(lines, job_id if job_map is lines else "runs")),
        )
        region: str | None = None
        for step in body["steps"]:
            if not isinstance(step, dict):
                continue
            uses = step.get("uses")
            if not isinstance(uses, str):
                continue
            where = doc.where(node_line(step))
            inputs = _with(step, where)
            with_node = step.get("with")

            def line_of(key: str, node: Any = with_node) -> int | None:
                return value_line(node, key) if node is not None else None

            if AWS_CREDENTIALS.match(uses):
                value = inputs.get("aws-region")
                if isinstance(value, str) and value.strip() and not has_expression(value):
                    region = value.strip()
                continue
            if VAULT_ACTION.match(uses):
                result = vault_action.convert_step(inputs, where, line_of, doc.find_line)
                notes.extend(result.notes)
                if not result.convertible:
                    continue
                secrets = result.secrets
                rewrite = StepRewrite(
                    job, body, step, [], where, result.step_env, result.export_env
                )
                if step.get("id") is not None and re.search(
                    rf"steps\.{re.escape(str(step['id']))}\.outputs\.", doc.text
                ):
                    rewrite.outputs = result.outputs
                    if any(s.field in ("*", "**") for s in result.secrets):
                        notes.append(
                            Note(
                                where,
                                "outputs of '*' entries keep the key's case in vault-action "
                                "(steps.ID.outputs.PREFIX_key); the inject step names them "
                                "like the variables (PREFIX_KEY): check the references",
                            )
                        )
            elif AWS_ACTION.match(uses):
                options = {"region": region} if region else {}
                aws = aws_action.convert_step(
                    inputs, where, line_of, doc.find_line, Backend.of("aws", options)
                )
                notes.extend(aws.notes)
                secrets = aws.secrets
                rewrite = StepRewrite(job, body, step, [], where)
            else:
                continue
            if not secrets:
                continue
            job.groups.append(secrets)
            rewrite.names = [s.name for s in secrets]
            rewrites.append(rewrite)
        if job.groups:
            jobs.append(job)
    return jobs, notes, rewrites


def rewrite_steps(
    doc: Document, rewrites: list[StepRewrite], action: str, configs: dict[str, str]
) -> None:
    """Replace each step in ``doc.data`` (``configs``: job name -> its spec file)."""
    renames: dict[str, dict[str, str]] = {}
    if rewrites:
        doc.use_sequence_style_of(rewrites[0].job_body, "steps")
    for rewrite in rewrites:
        step = rewrite.step
        old = step.get("with")
        inputs = CommentedMap()
        config = configs[rewrite.job.name]
        if config != "jobsecrets.yml":
            inputs["config"] = config
        inputs["only"] = ",".join(rewrite.names)
        if not rewrite.export_env:
            inputs["export-env"] = "false"
        if rewrite.outputs:
            inputs["outputs"] = "true"
            changed = {o: n for o, n in rewrite.outputs.items() if o != n}
            if changed:
                renames[str(step["id"])] = changed
        step["uses"] = action
        pin_comment = step.ca.items.get("uses")
        if (
            pin_comment
            and pin_comment[2] is not None
            and re.match(r"\s*#\s*v?\d", str(pin_comment[2].value))
        ):
            del step.ca.items["uses"]  # '# v3.0.0' named the old action's version
        if "with" in step:
            step["with"] = inputs
        else:
            step.insert(list(step).index("uses") + 1, "with", inputs)
        if rewrite.step_env:
            env = step.get("env")
            if not isinstance(env, dict):
                env = CommentedMap()
                step["env"] = env
            for key, value in rewrite.step_env.items():
                env[key] = value
        move_trailing_comment(old, step)
    if renames:
        _rename_outputs(doc.data, renames)


def _rename_outputs(node: Any, renames: dict[str, dict[str, str]]) -> Any:
    """``steps.ID.outputs.password`` -> ``steps.ID.outputs.PASSWORD`` in every string."""
    if isinstance(node, dict):
        for key in list(node):
            node[key] = _rename_outputs(node[key], renames)
        return node
    if isinstance(node, list):
        for index, item in enumerate(node):
            node[index] = _rename_outputs(item, renames)
        return node
    if isinstance(node, str) and "outputs." in node:
        text = str(node)
        for step_id, names in renames.items():
            for old, new in names.items():
                text = re.sub(
                    _OUTPUT_REF.format(id=re.escape(step_id), name=re.escape(old)),
                    f"steps.{step_id}.outputs.{new}",
                    text,
                )
        if text != str(node):
            try:
                return type(node)(text)  # keep the scalar's style (literal, quoted...)
            except TypeError:
                return text
    return node
