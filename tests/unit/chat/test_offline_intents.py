"""The offline model's planning on its own: intent per phrase, tool choice, answers, turns."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chat_app.offline_intents import (
    ATTACHMENT_MARK,
    PREFIX,
    Intent,
    ToolCall,
    ToolStep,
    Turn,
    acknowledge_attachments,
    describe_tool_result,
    parse_intent,
    plan_reply,
    read_turn,
)
from chat_app.todo_mcp import TOOL_NAMES

ALL_TOOLS = set(TOOL_NAMES)


@pytest.mark.parametrize(
    ("message", "intent"),
    [
        ("add a task to buy milk", Intent("add", title="buy milk")),
        ("Please add a new task: call mom.", Intent("add", title="call mom")),
        ("create todo 'water the plants'", Intent("add", title="water the plants")),
        ("add buy bread to my list", Intent("add", title="buy bread")),
        ("remind me to pay rent", Intent("add", title="pay rent")),
        ("list my tasks", Intent("list")),
        ("What are my tasks?", Intent("list")),
        ("show all my tasks", Intent("list", include_completed=True)),
        ("show completed tasks", Intent("list", include_completed=True)),
        ("my tasks", Intent("list")),
        ("complete buy milk", Intent("complete", target="buy milk")),
        ("finish #3", Intent("complete", task_id=3)),
        ("done 12", Intent("complete", task_id=12)),
        ("Complete task 7", Intent("complete", task_id=7)),
        ("mark buy milk as done", Intent("complete", target="buy milk")),
        ("I finished the laundry task", Intent("complete", target="laundry")),
        ("delete #4", Intent("delete", task_id=4)),
        ("remove buy milk from my list", Intent("delete", target="buy milk")),
        ("rename task #2 to buy oat milk", Intent("update", title="buy oat milk", task_id=2)),
        (
            "update buy milk to buy oat milk",
            Intent("update", title="buy oat milk", target="buy milk"),
        ),
        ("hello there", Intent("chat")),
        ("what is the capital of France?", Intent("chat")),
    ],
)
def test_parse_intent(message: str, intent: Intent) -> None:
    assert parse_intent(message) == intent


@pytest.mark.parametrize(
    ("message", "call"),
    [
        ("add a task to buy milk", ToolCall("add_task", {"title": "buy milk"})),
        ("list my tasks", ToolCall("list_tasks", {"include_completed": False})),
        ("list all tasks", ToolCall("list_tasks", {"include_completed": True})),
        ("complete #3", ToolCall("complete_task", {"task_id": 3})),
        ("delete #4", ToolCall("delete_task", {"task_id": 4})),
        ("rename task #2 to x", ToolCall("update_task", {"task_id": 2, "title": "x"})),
        ("complete buy milk", ToolCall("list_tasks", {"include_completed": False})),
        ("delete buy milk", ToolCall("list_tasks", {"include_completed": True})),
    ],
)
def test_first_step_calls_the_right_tool(message: str, call: ToolCall) -> None:
    assert plan_reply(Turn(user_text=message), ALL_TOOLS) == call


@pytest.mark.parametrize("message", ["add a task to buy milk", "list my tasks", "complete #1"])
def test_no_tool_offered_means_no_call(message: str) -> None:
    reply = plan_reply(Turn(user_text=message), set())
    assert isinstance(reply, str)
    assert reply.startswith(PREFIX)
    assert "not available" in reply


def test_a_missing_tool_is_not_called_even_after_resolving_a_title() -> None:
    assert plan_reply(Turn(user_text="complete milk"), {"list_tasks"}) == (
        f"{PREFIX} I would use the complete_task tool for that, but it is not available right now."
    )
    listed = listing(task(4, "milk"))
    assert plan_reply(Turn("complete milk", [listed]), {"list_tasks"}) == (
        f"{PREFIX} I would use the complete_task tool for that, but it is not available right now."
    )


def listing(*tasks: dict[str, Any], include_completed: bool = False) -> ToolStep:
    return ToolStep(
        "list_tasks", {"include_completed": include_completed}, json.dumps({"tasks": list(tasks)})
    )


def task(task_id: int, title: str, completed: bool = False) -> dict[str, Any]:
    return {"id": task_id, "title": title, "completed": completed}


def test_a_title_is_resolved_from_the_listing() -> None:
    turn = Turn("complete buy milk", [listing(task(1, "walk dog"), task(2, "Buy milk"))])
    assert plan_reply(turn, ALL_TOOLS) == ToolCall("complete_task", {"task_id": 2})
    turn = Turn("rename milk to oat milk", [listing(task(5, "buy milk"), task(6, "walk"))])
    assert plan_reply(turn, ALL_TOOLS) == ToolCall(
        "update_task", {"task_id": 5, "title": "oat milk"}
    )


def test_an_exact_title_wins_over_partial_matches() -> None:
    turn = Turn("delete milk", [listing(task(1, "buy milk"), task(2, "milk"))])
    assert plan_reply(turn, ALL_TOOLS) == ToolCall("delete_task", {"task_id": 2})


def test_no_match_and_ambiguous_matches_are_answered_not_guessed() -> None:
    missing = plan_reply(Turn("complete taxes", [listing(task(1, "buy milk"))]), ALL_TOOLS)
    assert missing == (
        f'{PREFIX} I could not find a task matching "taxes". You have 1 open task: #1 "buy milk".'
    )
    ambiguous = plan_reply(
        Turn("complete milk", [listing(task(1, "buy milk"), task(2, "milk the cow"))]), ALL_TOOLS
    )
    assert isinstance(ambiguous, str)
    assert '#1 "buy milk", #2 "milk the cow"' in ambiguous
    assert "Which one" in ambiguous


def test_after_a_tool_call_it_states_the_result() -> None:
    added = ToolStep("add_task", {"title": "buy milk"}, json.dumps(task(7, "buy milk")))
    assert plan_reply(Turn("add a task to buy milk", [added]), ALL_TOOLS) == (
        f'{PREFIX} Added task #7 "buy milk" to your list.'
    )
    listed = listing(task(1, "a"), task(2, "b", completed=True), include_completed=True)
    assert describe_tool_result(listed) == f'{PREFIX} You have 2 tasks: #1 "a", #2 "b" (done).'
    assert describe_tool_result(listing()) == f"{PREFIX} You have no open tasks."
    failed = ToolStep("delete_task", {"task_id": 9}, "Task 9 not found.")
    assert (
        describe_tool_result(failed) == f"{PREFIX} The delete_task tool returned: Task 9 not found."
    )


def test_plain_chat_gets_help_and_an_echo() -> None:
    reply = plan_reply(Turn("tell me a joke"), ALL_TOOLS)
    assert isinstance(reply, str)
    assert reply.startswith(f"{PREFIX} I am the built-in offline model")
    assert '"add a task to buy milk"' in reply
    assert reply.endswith('You said: "tell me a joke".')
    bare = plan_reply(Turn("tell me a joke"), set())
    assert isinstance(bare, str)
    assert "no task tools are available" in bare


def test_read_turn_keeps_only_the_current_turns_tool_calls() -> None:
    items: list[Any] = [
        {"role": "user", "content": "add a task to a"},
        {"type": "function_call", "call_id": "old", "name": "add_task", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "old", "output": "{}"},
        {"role": "assistant", "content": "done"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list"}]},
        {"type": "function_call", "call_id": "new", "name": "list_tasks", "arguments": "{}"},
        {
            "type": "function_call_output",
            "call_id": "new",
            "output": [{"type": "input_text", "text": '{"tasks": []}'}],
        },
    ]
    assert read_turn(items) == Turn("list", [ToolStep("list_tasks", {}, '{"tasks": []}')])


def test_read_turn_skips_chatkit_context_messages() -> None:
    items: list[Any] = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "done 3"}]},
        {
            "type": "message",
            "role": "user",
            "content": [
                {
                    "type": "input_text",
                    "text": "The user is referring to this in particular: \nlist my tasks",
                }
            ],
        },
    ]
    assert read_turn(items) == Turn("done 3")


def test_a_time_zone_question_calls_the_client_tool_only_when_it_is_offered() -> None:
    turn = read_turn("What is my time zone?")
    assert plan_reply(turn, {"get_time_zone", "list_tasks"}) == ToolCall("get_time_zone", {})
    assert "get_time_zone tool" in str(plan_reply(turn, {"list_tasks"}))


def test_attachments_are_acknowledged_for_the_last_message_only() -> None:
    with_file: Any = {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "Read this"},
            {"type": "input_text", "text": f"{ATTACHMENT_MARK}notes.txt]\nfirst line"},
        ],
    }
    plain: Any = {"type": "message", "role": "user", "content": "And now?"}

    acknowledged = acknowledge_attachments([with_file])
    assert acknowledged is not None
    assert "1 attachment" in acknowledged
    assert acknowledge_attachments([with_file, plain]) is None
