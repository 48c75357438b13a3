"""What the offline model decides to do, from what a model reads: pure, no I/O, no SDK types.

* :func:`parse_intent` classifies the user's text (add, list, complete, delete, update a task,
  or plain chat);
* :func:`read_turn` reads the input items the way a model does (the last user message and the
  tool calls made since);
* :func:`plan_reply` decides the next output, a :class:`ToolCall` (only of a tool offered;
  naming a task by title first lists the tasks, then acts on the match) or the answer text
  (after a tool result it states what the tool returned; every answer says it is the offline
  model).

:func:`acknowledge_attachments` names what a message carried (the attachment lines the converter
writes). :mod:`chat_app.offline_model` streams the plan as a model response.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from agents.items import TResponseInputItem

PREFIX = "(Offline model)"
"""Every answer starts with this, so nobody mistakes it for a real model."""

QUOTES = "\"'`\u2018\u2019\u201c\u201d"
"""Quote characters stripped around titles ("add a task 'buy milk'")."""

ECHO_MAX_CHARS = 200

ATTACHMENT_MARK = "[Attachment "
"""Start of the text line naming an attachment in the model input (written by
:mod:`chat_app.attachments`, before the attachment's content); a user's own text leaves it out."""
EARLIER_MARK = "[Earlier attachment "
"""Start of the line describing an older attachment whose bytes are not sent again."""
ATTACHMENT_MARKS = (ATTACHMENT_MARK, EARLIER_MARK)
RESULT_MAX_CHARS = 500

IntentKind = Literal["add", "list", "complete", "delete", "update", "time_zone", "chat"]
TOOL_FOR_INTENT: dict[IntentKind, str] = {
    "add": "add_task",
    "list": "list_tasks",
    "complete": "complete_task",
    "delete": "delete_task",
    "update": "update_task",
    "time_zone": "get_time_zone",
}
"""The tool each intent calls. ``get_time_zone`` is the client tool of docs/widgets.md: offered
only when ``CLIENT_TOOLS`` declares it, so without it the offline model says it is unavailable."""


# --- understanding the request ----------------------------------------------------------------


@dataclass(frozen=True)
class Intent:
    """What the last user message asks for.

    ``title`` is the new title (add, update); ``task_id`` or ``target`` (a title to look up)
    names the existing task (complete, delete, update).
    """

    kind: IntentKind
    title: str | None = None
    task_id: int | None = None
    target: str | None = None
    include_completed: bool = False


_TASK_WORD = r"(?:task|todo|to-do|item|reminder)"
_LIST_SUFFIX = rf"(?:\s+(?:from|off|on|in)\s+(?:my\s+|the\s+)?(?:{_TASK_WORD}\s+)?(?:list|tasks))?"
_DONE_WORD = r"(?:done|complete|completed|finished)"

_UPDATE = re.compile(
    rf"^(?:rename|update|change|edit)\s+(?:the\s+)?(?:{_TASK_WORD}\s+)?(?P<target>.+?)"
    r"\s+(?:to|into)\s+(?P<title>.+)$",
    re.IGNORECASE,
)
_ADD = (
    re.compile(
        rf"^(?:add|create|new|make)\s+(?:a\s+|an\s+)?(?:new\s+)?{_TASK_WORD}s?\b\s*"
        r"(?:(?:to|for|called|named|saying|that says)\b|:|-)?\s*(?P<title>\S.*)$",
        re.IGNORECASE,
    ),
    re.compile(
        rf"^(?:add|put)\s+(?P<title>.+?)\s+(?:to|on)\s+(?:my\s+|the\s+)?(?:{_TASK_WORD}\s+)?"
        r"(?:list|tasks)$",
        re.IGNORECASE,
    ),
    re.compile(r"^remind me to\s+(?P<title>.+)$", re.IGNORECASE),
)
_LIST = (
    re.compile(
        rf"^(?:list|show|display|view|get|give|see|what|which|tell)\b.*\b(?:{_TASK_WORD}s?|list)\b",
        re.IGNORECASE,
    ),
    re.compile(rf"^(?:my\s+)?(?:{_TASK_WORD}s|{_TASK_WORD} list)$", re.IGNORECASE),
)
_LIST_ALL = re.compile(r"\b(?:all|completed|done|finished|everything)\b", re.IGNORECASE)
_COMPLETE = (
    re.compile(
        r"^(?:complete|finish|done with|done|check off|tick off|cross off|"
        rf"i(?:'ve| have)? (?:finished|completed|done))\s+(?P<target>.+?){_LIST_SUFFIX}$",
        re.IGNORECASE,
    ),
    re.compile(rf"^mark\s+(?P<target>.+?)\s+(?:as\s+)?{_DONE_WORD}$", re.IGNORECASE),
)
_DELETE = re.compile(
    rf"^(?:delete|remove|drop|erase|cancel)\s+(?P<target>.+?){_LIST_SUFFIX}$", re.IGNORECASE
)
_POLITE = re.compile(
    r"^(?:(?:please|pls|ok|okay|hey|hi)[,!]?\s+|(?:can|could|would) you\s+)+", re.IGNORECASE
)
_TARGET_ID = re.compile(
    rf"^(?:{_TASK_WORD}\s+)?(?:number\s+|no\.?\s*)?#?\s*(?P<id>\d+)$", re.IGNORECASE
)


_TIME_ZONE = re.compile(r"\btime[ -]?zone\b", re.IGNORECASE)


def parse_intent(text: str) -> Intent:
    """Classify one user message (first matching pattern wins; nothing matched: plain chat)."""
    message = _normalise(text)
    if _TIME_ZONE.search(message):
        return Intent("time_zone")
    if match := _UPDATE.match(message):
        return _with_target(Intent("update", title=_clean(match["title"])), match["target"])
    for pattern in _ADD:
        if match := pattern.match(message):
            return Intent("add", title=_clean(match["title"]))
    if any(pattern.match(message) for pattern in _LIST):
        return Intent("list", include_completed=bool(_LIST_ALL.search(message)))
    for pattern in _COMPLETE:
        if match := pattern.match(message):
            return _with_target(Intent("complete"), match["target"])
    if match := _DELETE.match(message):
        return _with_target(Intent("delete"), match["target"])
    return Intent("chat")


def _normalise(text: str) -> str:
    message = " ".join(text.split()).rstrip(".!?")
    return _POLITE.sub("", message).strip()


def _clean(text: str) -> str:
    return text.strip().strip(QUOTES).strip()


def _with_target(intent: Intent, raw_target: str) -> Intent:
    target = re.sub(r"^(?:the|my)\s+", "", _clean(raw_target), flags=re.IGNORECASE)
    target = re.sub(rf"\s+{_TASK_WORD}$", "", target, flags=re.IGNORECASE)
    if match := _TARGET_ID.match(target):
        return Intent(intent.kind, title=intent.title, task_id=int(match["id"]))
    return Intent(intent.kind, title=intent.title, target=_clean(target))


# --- reading the conversation -----------------------------------------------------------------


@dataclass
class ToolStep:
    """One tool call of the current turn and its output (``None`` while it has none)."""

    name: str
    arguments: dict[str, Any]
    output: str | None = None


@dataclass
class Turn:
    """The last user message and the tool calls made since (what a model reasons over)."""

    user_text: str = ""
    steps: list[ToolStep] = field(default_factory=list)


CHATKIT_CONTEXT_PREFIXES = (
    "The user is referring to this in particular:",
    "# User-provided context for @-mentions",
)
"""ChatKit's converter appends these user-role messages after the user's own text (quoted text,
@-mention context); they are context for the turn, not the request."""


def read_turn(items: str | Sequence[TResponseInputItem]) -> Turn:
    if isinstance(items, str):
        return Turn(user_text=items)
    turn = Turn()
    calls: dict[str, ToolStep] = {}
    for raw in items:
        item = _as_dict(raw)
        kind = item.get("type")
        if item.get("role") == "user" and kind in (None, "message"):
            text = _message_text(item.get("content"))
            if not text.startswith(CHATKIT_CONTEXT_PREFIXES):
                turn = Turn(user_text=text)
                calls = {}
        elif kind == "function_call":
            step = ToolStep(
                name=str(item.get("name")), arguments=_json_object(item.get("arguments"))
            )
            calls[str(item.get("call_id"))] = step
            turn.steps.append(step)
        elif kind == "function_call_output" and (called := calls.get(str(item.get("call_id")))):
            called.output = _message_text(item.get("output"))
    return turn


def _as_dict(item: Any) -> Mapping[str, Any]:
    if isinstance(item, Mapping):
        return item
    dump = getattr(item, "model_dump", None)
    return dump(exclude_unset=True) if callable(dump) else {}


def _message_text(content: Any) -> str:
    """Text of a message content or a tool output: a string or a list of text parts (the lines
    naming attachments left out: :func:`acknowledge_attachments` reads them)."""
    if isinstance(content, str):
        return content
    if isinstance(content, Iterable):
        texts = (str(_as_dict(part).get("text", "")) for part in content)
        return "".join(text for text in texts if not text.startswith(ATTACHMENT_MARKS))
    return ""


def acknowledge_attachments(items: str | Sequence[TResponseInputItem]) -> str | None:
    """A sentence naming the attachments of the last user message (name, type, size; the first
    line of a text file), so the local server shows what the model received. None without."""
    if isinstance(items, str):
        return None
    noted: list[str] = []
    for raw in items:
        item = _as_dict(raw)
        content = item.get("content")
        if item.get("role") != "user" or not isinstance(content, str | list):
            continue
        if _message_text(content).startswith(CHATKIT_CONTEXT_PREFIXES):
            continue
        noted = []
        if isinstance(content, str):  # a message of plain text: nothing attached
            continue
        for text in (str(_as_dict(part).get("text", "")) for part in content):
            if text.startswith(ATTACHMENT_MARK):
                header, _, body = text.partition("\n")
                note = header[len(ATTACHMENT_MARK) : -1]
                lines = body.strip().splitlines()
                if lines:
                    note += f', first line "{_truncate(lines[0], ECHO_MAX_CHARS)}"'
                noted.append(note)
            elif text.startswith(EARLIER_MARK):
                noted.append(text[len(EARLIER_MARK) :].split(":", 1)[0] + " (sent earlier)")
    if not noted:
        return None
    count = "1 attachment" if len(noted) == 1 else f"{len(noted)} attachments"
    return f"{PREFIX} I received {count}: " + "; ".join(noted) + "."


def _json_object(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# --- deciding what to do ----------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    """A call of the tool ``name`` with these arguments."""

    name: str
    arguments: dict[str, Any]


Reply = ToolCall | str
"""The plan of one model output: a tool call, or the answer text."""


def plan_reply(turn: Turn, tool_names: set[str]) -> Reply:
    """The next output for this turn: one tool call, or the final answer text."""
    intent = parse_intent(turn.user_text)
    if not turn.steps:
        return _first_step(intent, turn.user_text, tool_names)
    last = turn.steps[-1]
    if last.name == "list_tasks" and intent.target and len(turn.steps) == 1:
        return _act_on_listed(intent, last, tool_names)
    return describe_tool_result(last)


def picked_tool_call(turn: Turn, picked: str, tool_names: set[str]) -> ToolCall | None:
    """The call of the tool picked in the composer's tool menu (``tool_choice``), made on the
    turn's first step when the message alone gives its arguments: the message is the title of
    ``add_task``; ``list_tasks`` needs none. Other picks (they need a task id) go by the text."""
    if turn.steps or picked not in tool_names:
        return None
    if picked == "add_task" and turn.user_text.strip():
        return ToolCall("add_task", {"title": turn.user_text.strip()})
    if picked == "list_tasks":
        return ToolCall("list_tasks", {"include_completed": True})
    return None


def _first_step(intent: Intent, user_text: str, tool_names: set[str]) -> Reply:
    if intent.kind == "chat":
        return _help(user_text, tool_names)
    tool = TOOL_FOR_INTENT[intent.kind]
    if intent.target is not None:
        if {"list_tasks", tool} <= tool_names:
            return ToolCall("list_tasks", {"include_completed": intent.kind != "complete"})
        return _unavailable(tool)
    if tool not in tool_names:
        return _unavailable(tool)
    return _tool_call(intent, intent.task_id)


def _tool_call(intent: Intent, task_id: int | None) -> ToolCall:
    tool = TOOL_FOR_INTENT[intent.kind]
    if intent.kind == "add":
        return ToolCall(tool, {"title": intent.title})
    if intent.kind == "list":
        return ToolCall(tool, {"include_completed": intent.include_completed})
    if intent.kind == "time_zone":
        return ToolCall(tool, {})
    if intent.kind == "update":
        return ToolCall(tool, {"task_id": task_id, "title": intent.title})
    return ToolCall(tool, {"task_id": task_id})


def _act_on_listed(intent: Intent, listing: ToolStep, tool_names: set[str]) -> Reply:
    """Resolve the title the user gave against the listed tasks, then act on the one match."""
    tasks = _json_object(listing.output).get("tasks")
    if not isinstance(tasks, list):
        return describe_tool_result(listing)
    wanted = (intent.target or "").casefold()
    exact = [task for task in tasks if str(task.get("title", "")).casefold() == wanted]
    partial = [task for task in tasks if wanted in str(task.get("title", "")).casefold()]
    matches = exact or partial
    if len(matches) == 1:
        if TOOL_FOR_INTENT[intent.kind] not in tool_names:
            return _unavailable(TOOL_FOR_INTENT[intent.kind])
        return _tool_call(intent, int(matches[0]["id"]))
    if not matches:
        return (
            f'{PREFIX} I could not find a task matching "{intent.target}". '
            f"{_task_list_sentence(tasks, listing.arguments)}"
        )
    return (
        f'{PREFIX} More than one task matches "{intent.target}": {_names(matches)}. '
        f"Which one do you mean? Tell me its number, for example #{matches[0]['id']}."
    )


# --- saying things ----------------------------------------------------------------------------


def describe_tool_result(step: ToolStep) -> str:
    """State what a tool returned (the model's answer after a tool call)."""
    output = (step.output or "").strip()
    result = _json_object(output)
    task = result if "id" in result and "title" in result else None
    if step.name == "list_tasks" and isinstance(result.get("tasks"), list):
        return f"{PREFIX} {_task_list_sentence(result['tasks'], step.arguments)}"
    if task is not None and step.name in _TASK_RESULT_SENTENCES:
        sentence = _TASK_RESULT_SENTENCES[step.name]
        return f"{PREFIX} {sentence.format(id=task['id'], title=task['title'])}"
    return f"{PREFIX} The {step.name} tool returned: {_truncate(output, RESULT_MAX_CHARS)}"


_TASK_RESULT_SENTENCES = {
    "add_task": 'Added task #{id} "{title}" to your list.',
    "complete_task": 'Marked task #{id} "{title}" as done.',
    "update_task": 'Updated task #{id}, now titled "{title}".',
    "delete_task": 'Deleted task #{id} "{title}".',
}


def _task_list_sentence(tasks: list[Any], arguments: Mapping[str, Any] | None = None) -> str:
    kind = "" if (arguments or {}).get("include_completed", True) else "open "
    if not tasks:
        return f"You have no {kind}tasks."
    noun = "task" if len(tasks) == 1 else "tasks"
    return f"You have {len(tasks)} {kind}{noun}: {_names(tasks)}."


def _names(tasks: list[Any]) -> str:
    return ", ".join(_name(task) for task in tasks)


def _name(task: Mapping[str, Any]) -> str:
    done = " (done)" if task.get("completed") else ""
    return f'#{task.get("id")} "{task.get("title")}"{done}'


def _help(user_text: str, tool_names: set[str]) -> str:
    echo = f'You said: "{_truncate(" ".join(user_text.split()), ECHO_MAX_CHARS)}".'
    if not tool_names & (set(TOOL_FOR_INTENT.values()) - {TOOL_FOR_INTENT["time_zone"]}):
        return (
            f"{PREFIX} I am the built-in offline model, so I cannot hold a real conversation, "
            f"and no task tools are available right now. {echo}"
        )
    return (
        f"{PREFIX} I am the built-in offline model: I cannot hold a real conversation, but I "
        'can manage your todo list. Try "add a task to buy milk", "list my tasks", '
        '"complete buy milk", "rename task #1 to buy oat milk" or "delete #1". '
        f"{echo}"
    )


def _unavailable(tool: str) -> str:
    return f"{PREFIX} I would use the {tool} tool for that, but it is not available right now."


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
