"""Validation issues as GitHub Actions workflow commands (``::error file=F,line=L,title=T::message``).

GitHub turns such lines on a job's standard output into annotations on the pull request's
diff. Escaping follows the Actions toolkit: in the message ``%``, CR and LF are
percent-encoded; in property values ``:`` and ``,`` are encoded as well.
"""

from __future__ import annotations

from dataclasses import replace

from harmonise.errors import Issue


def escape_data(text: str) -> str:
    """Escape a workflow-command message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow-command property value (file, title)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(issue: Issue) -> str:
    """One workflow-command line for ``issue`` (``::warning`` for warnings)."""
    level = "warning" if issue.severity == "warning" else "error"
    props = []
    if issue.file:
        props.append(f"file={escape_property(issue.file)}")
        if issue.line:
            props.append(f"line={issue.line}")
    props.append(f"title={escape_property(f'harmonise {issue.code}')}")
    # file and line travel as properties; the message keeps the field path or data location
    message = replace(issue, file=None, line=None).format()
    return f"::{level} {','.join(props)}::{escape_data(message)}"


def github_annotations(issues: list[Issue]) -> str:
    """All issues, one workflow command per line."""
    return "\n".join(annotation(i) for i in issues)
