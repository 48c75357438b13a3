"""The ChatKit server: the SDK's ``ChatKitServer`` over the project's store, running the agent.

The SDK does the protocol (request types, bookkeeping, event order, persisting finished items).
This subclass adds what it leaves to integrations: ``respond()`` (the history up to the turn's
own message, converted by :class:`ToolCallConverter`, answered by an
:class:`~chat_app.streaming.AgentTurn`; the title from the first message), the checks the SDK does
not make before its stream starts (:meth:`ChatServer.check`: 404/400/409/413 before any write),
widget actions (:mod:`chat_app.actions`), feedback, attachments, and shielded writes for a
cancelled stream.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from agents import TResponseInputItem
from chatkit.agents import ThreadItemConverter
from chatkit.server import ChatKitServer
from chatkit.types import (
    Action,
    AssistantMessageContent,
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    Attachment,
    AttachmentsDeleteReq,
    AudioInput,
    ErrorEvent,
    FeedbackKind,
    HiddenContextItem,
    ItemsFeedbackReq,
    ItemsListReq,
    NonStreamingReq,
    StreamingReq,
    SyncCustomActionResponse,
    ThreadItem,
    ThreadItemDoneEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    ThreadsCustomActionReq,
    ThreadsDeleteReq,
    ThreadsRetryAfterItemReq,
    ThreadsSyncCustomActionReq,
    ThreadStreamEvent,
    ThreadsUpdateReq,
    ThreadUpdateParams,
    TranscriptionResult,
    UserMessageInput,
    UserMessageItem,
    UserMessageTagContent,
    UserMessageTextContent,
    WidgetItem,
    WidgetRootUpdated,
    WorkflowItem,
)
from chatkit_backend.caller import Caller
from chatkit_backend.errors import AppError, BadRequest, PayloadTooLarge
from chatkit_backend.settings import Settings
from chatkit_backend.store import NewestItems, NewestWanted, PostgresStore
from chatkit_backend.titles import Title, renamed_by_user, set_by_user
from chatkit_backend.tool_calls import ToolCallRecord
from openai.types.responses import EasyInputMessageParam, ResponseInputTextParam
from openai.types.responses.response_function_tool_call_param import (
    ResponseFunctionToolCallParam,
)
from openai.types.responses.response_input_item_param import FunctionCallOutput
from pydantic import TypeAdapter, ValidationError

from .actions import WidgetActions
from .attachments import MessageAttachments, ModelAttachments
from .cancellation import shielded
from .early_history import take_early_history, want_early_history
from .inference import InferenceChoices, TurnOptions
from .streaming import AgentSource, AgentTurn, TurnSettings
from .task_repository import TaskRepository
from .task_widgets import tasks_changed
from .titling import PendingTitle, TitleWriter
from .transcription import Transcriber

HISTORY_LIMIT = 60
"""Most recent thread items sent to the model per turn: bounds the prompt and the load query.
Tool records and widgets count as items; a user/assistant exchange with one todo tool call (its
record and its widget) is four."""

TITLE_MAX_CHARS = 60

CONVERSATION_TITLE: TypeAdapter[str] = TypeAdapter(Title)
"""The REST rule for titles (trimmed, 1..200 characters, no NUL), applied to ``threads.update``."""


class ToolCallConverter(ThreadItemConverter):
    """History -> model input, including the tool calls of earlier turns.

    The SDK's converter does not replay server-side tool calls; this one turns each stored
    :class:`ToolCallRecord` back into the ``function_call`` + ``function_call_output`` pair the
    model produced and saw, so the next turn knows what its tools did (and which task ids exist).
    A user message carries its attachments as :class:`~chat_app.attachments.ModelAttachments`
    decides: the bytes for recent messages, a description for older ones.
    """

    def __init__(self, attachments: ModelAttachments | None = None) -> None:
        self.attachments = attachments or ModelAttachments()

    async def hidden_context_to_input(
        self, item: HiddenContextItem
    ) -> TResponseInputItem | list[TResponseInputItem] | None:
        record = ToolCallRecord.parse(item.content)
        if record is None:
            if isinstance(item.content, str):
                return await super().hidden_context_to_input(item)
            return None
        # The output as the model saw it: a string or a list of content parts.
        output = f"Error: {record.error}" if record.error else record.output
        return [
            ResponseFunctionToolCallParam(
                type="function_call",
                call_id=record.call_id,
                name=record.name,
                arguments=json.dumps(record.arguments),
            ),
            FunctionCallOutput(
                type="function_call_output",
                call_id=record.call_id,
                output=output if isinstance(output, str | list) else json.dumps(output),
            ),
        ]

    async def assistant_message_to_input(
        self, item: AssistantMessageItem
    ) -> TResponseInputItem | list[TResponseInputItem] | None:
        """A stored answer as an assistant message with plain string content.

        The SDK's converter sends ``output_text`` parts, which the Responses API takes but the
        Agents SDK's Chat Completions converter rejects (``UserError: Unknown content``) before
        any request is sent, so every second turn over ``OPENAI_BASE_URL`` failed. A string is
        the one assistant content both APIs accept. An empty answer is left out: a stored
        partial answer is never empty, and an empty assistant message is refused by some servers.
        """
        text = "".join(part.text for part in item.content)
        if not text.strip():
            return None
        return EasyInputMessageParam(type="message", role="assistant", content=text)

    async def workflow_to_input(
        self, item: WorkflowItem
    ) -> TResponseInputItem | list[TResponseInputItem] | None:
        """Nothing: a workflow shows the user what the hidden tool records already tell the
        model (the SDK would add a message per task), and a reasoning summary is not replayed."""
        return None

    async def widget_to_input(
        self, item: WidgetItem
    ) -> TResponseInputItem | list[TResponseInputItem] | None:
        """A widget the user was shown, in the words of its ``copy_text``.

        The SDK sends the whole widget JSON (every button and style token) on every later turn;
        the text says what the widget shows at a fraction of the tokens. The tool call that
        produced it is in the history too, with the full result.
        """
        text = item.copy_text or item.widget.model_dump_json(exclude_unset=True, exclude_none=True)
        return EasyInputMessageParam(
            type="message",
            role="user",
            content=f"[A widget (item {item.id}) was shown to the user: {text}]",
        )

    async def user_message_to_input(
        self, item: UserMessageItem, is_last_message: bool = True
    ) -> TResponseInputItem | list[TResponseInputItem] | None:
        """The SDK's conversion, with each attachment as a naming line and its content (the
        SDK's hook gives an attachment one part only). A message of plain text is one string,
        as the SDK would send it but without its list of one part: the Agents SDK and the
        openai client walk every part of the history on every request."""
        if not item.attachments:
            if not (item.quoted_text and is_last_message) and all(
                isinstance(part, UserMessageTextContent) for part in item.content
            ):
                text = "".join(part.text for part in item.content)
                return EasyInputMessageParam(type="message", role="user", content=text)
            return await super().user_message_to_input(item, is_last_message)
        converted = await super().user_message_to_input(
            item.model_copy(update={"attachments": []}), is_last_message
        )
        if not isinstance(converted, list) or not converted:
            return converted
        message: Any = converted[0]
        message["content"] = [
            *message["content"],
            *(part for each in item.attachments for part in self.attachments.parts(each)),
        ]
        return converted

    async def attachment_to_message_content(self, attachment: Attachment) -> Any:
        return self.attachments.parts(attachment)[-1]

    async def tag_to_message_content(self, tag: UserMessageTagContent) -> Any:
        return ResponseInputTextParam(
            type="input_text", text=f"@{tag.text}: {json.dumps(tag.data, default=str)}"
        )


class ChatServer(ChatKitServer[Caller]):
    """ChatKit protocol over :class:`PostgresStore`, answering with the project's agent."""

    def __init__(self, store: PostgresStore, agents: AgentSource, settings: Settings) -> None:
        super().__init__(store, attachment_store=store)
        self.postgres = store
        self.agents = agents
        self.settings = settings
        self.message_attachments = (
            MessageAttachments(store, store.files) if store.files is not None else None
        )
        self.actions = WidgetActions(store, TaskRepository(store.database))
        self.choices = InferenceChoices(settings, offline=agents.is_offline)
        self.titles = TitleWriter.configured(agents.provider, settings)
        self.transcriber = Transcriber(agents.provider, settings, offline=agents.is_offline)

    async def check(self, request: StreamingReq | NonStreamingReq, caller: Caller) -> None:
        """Refuse, before anything is written or streamed, what the SDK would get wrong.

        Ownership of what a request names where the SDK's store call would silently do nothing
        for a foreign id, and message length. ``NotFoundError`` (missing and foreign alike)
        becomes 404 at the HTTP edge; a failing ``threads.create`` leaves no empty thread.
        """
        match request:
            case ThreadsCreateReq():
                self._check_message(request.params.input)
                await self._check_attachments(request.params.input, None, caller)
            case ThreadsAddUserMessageReq():
                self._check_message(request.params.input)
                await self._check_attachments(
                    request.params.input, request.params.thread_id, caller
                )
            case ThreadsRetryAfterItemReq():
                item = await self.store.load_item(
                    request.params.thread_id, request.params.item_id, caller
                )
                if not isinstance(item, UserMessageItem):
                    raise BadRequest("Only a user message can be retried")
            case ThreadsUpdateReq():
                # Same title rule as the REST rename, so both views of a thread agree.
                try:
                    request.params.title = CONVERSATION_TITLE.validate_python(request.params.title)
                except ValidationError as exc:
                    raise BadRequest(f"title: {exc.errors()[0]['msg']}") from exc
            case ItemsListReq() | ItemsFeedbackReq() | ThreadsDeleteReq():
                await self.store.load_thread(request.params.thread_id, caller)
            case AttachmentsDeleteReq():
                await self.store.load_attachment(request.params.attachment_id, caller)
            case ThreadsCustomActionReq() | ThreadsSyncCustomActionReq():
                await self.actions.check(request.params, caller)

    async def _check_attachments(
        self, message: UserMessageInput, thread_id: str | None, caller: Caller
    ) -> None:
        if not message.attachments:
            return
        if self.message_attachments is None:
            raise BadRequest("Attachments are not enabled on this server")
        await self.message_attachments.check(message, thread_id, caller)

    def _check_message(self, message: UserMessageInput) -> None:
        """Only offered picks (model, tool), and ``MAX_MESSAGE_CHARS`` over everything the
        message carries to the model."""
        self.choices.check(message.inference_options)
        length = message_chars(message)
        if length > self.settings.max_message_chars:
            raise PayloadTooLarge(
                f"Message too long ({length} characters, at most {self.settings.max_message_chars})"
            )

    # --- the agent ------------------------------------------------------------------------------

    async def respond(
        self,
        thread: ThreadMetadata,
        input_user_message: UserMessageItem | None,
        caller: Caller,
    ) -> AsyncIterator[ThreadStreamEvent]:
        options = self.choices.for_turn(
            input_user_message.inference_options if input_user_message is not None else None
        )
        title_request: tuple[TitleWriter, str, str] | None = None
        if input_user_message is not None and not thread.title:
            # The SDK saves the thread and sends thread.updated when it sees the change.
            thread.title = title_from(input_user_message)
            text = message_text(input_user_message)
            if self.titles is not None and text:
                title_request = (self.titles, text, options.model or self.settings.model_name)
        pending_title: PendingTitle | None = None
        try:
            async for event in self._answer(thread, input_user_message, options, caller):
                yield event
                # Once the answer's first words are on their way: the title request never
                # competes with the answer's first model call.
                if title_request is not None and pending_title is None and _is_text(event):
                    pending_title = title_request[0].start(*title_request[1:])
            if title_request is not None and pending_title is None:
                pending_title = title_request[0].start(*title_request[1:])
            if pending_title is not None:
                await self._generated_title(thread, pending_title, caller)
        finally:
            if pending_title is not None:
                pending_title.cancel()

    async def _generated_title(
        self, thread: ThreadMetadata, pending: PendingTitle, caller: Caller
    ) -> None:
        """Use the generated title unless it failed or the user renamed the thread meanwhile
        (then the stored title is kept: the SDK saves ``thread`` when the stream ends)."""
        title = await pending.result()
        if title is None:
            return
        stored = await self.store.load_thread(thread.id, caller)
        if set_by_user(stored.metadata):
            thread.title, thread.metadata = stored.title, stored.metadata
            return
        thread.title = title

    async def _answer(
        self,
        thread: ThreadMetadata,
        input_user_message: UserMessageItem | None,
        options: TurnOptions,
        caller: Caller,
    ) -> AsyncIterator[ThreadStreamEvent]:
        history = await self.history(thread, input_user_message, caller)
        files = self.postgres.files
        attachments = (
            await ModelAttachments.for_history(files, history, caller)
            if files is not None
            else None
        )
        turn = AgentTurn(
            agents=self.agents,
            store=self.postgres,
            thread=thread,
            caller=caller,
            input_items=await ToolCallConverter(attachments).to_agent_input(history),
            options=options,
            settings=TurnSettings(
                max_turns=self.settings.agent_max_turns,
                timeout_seconds=self.settings.agent_turn_timeout_seconds,
            ),
        )
        async for event in turn.events():
            yield event

    async def history(
        self, thread: ThreadMetadata, own_message: UserMessageItem | None, caller: Caller
    ) -> list[ThreadItem]:
        """The turn's history, oldest first: at most :data:`HISTORY_LIMIT` items and
        ``HISTORY_MAX_CHARS`` characters (the oldest dropped first), ending at the turn's own
        message, which is always kept, so a message that arrived later (another turn on the same
        thread) is never answered by this one. Without a message of its own: the newest items.
        The page may have been read with the thread (:mod:`.early_history`).
        """
        if own_message is None:
            page = await self.store.load_thread_items(
                thread.id, None, HISTORY_LIMIT, "desc", caller
            )
            self._remember_newest(thread, page.data, page.has_more, caller)
            return list(reversed(within_chars(page.data, self.settings.history_max_chars)))
        early = take_early_history(thread.id, caller)
        page = await (
            early
            if early is not None
            else self.store.load_thread_items(
                thread.id, own_message.id, HISTORY_LIMIT - 1, "desc", caller
            )
        )
        self._remember_newest(thread, [own_message, *page.data], page.has_more, caller)
        earlier = within_chars(page.data, self.settings.history_max_chars - item_chars(own_message))
        return [*reversed(earlier), own_message]

    def read_history_early(self, request: StreamingReq, caller: Caller) -> NewestWanted | None:
        """Have the history :meth:`history` will take read with the thread, for a new
        message's turn (:mod:`.early_history`)."""
        return want_early_history(request, caller, HISTORY_LIMIT - 1)

    def _remember_newest(
        self, thread: ThreadMetadata, newest: list[ThreadItem], has_more: bool, caller: Caller
    ) -> None:
        """The SDK's agent stream reads the thread's two newest items next (to continue an open
        workflow): answered from what the history just read, as of the turn's own message."""
        self.postgres.remember_newest(NewestItems(caller.user_id, thread.id, newest, has_more))

    async def handle_stream_cancelled(
        self, thread: ThreadMetadata, pending_items: list[ThreadItem], caller: Caller
    ) -> None:
        """The SDK's cancel handling (store the partial answer and a note), never interrupted."""
        await shielded(super().handle_stream_cancelled(thread, pending_items, caller))

    # --- other request types --------------------------------------------------------------------

    async def mark_renamed(self, params: ThreadUpdateParams, caller: Caller) -> None:
        """Before the SDK's ``threads.update``: the title is marked as the user's own, so a
        generated title never replaces it (the SDK then saves the title over the marked JSON)."""
        thread = await self.store.load_thread(params.thread_id, caller)
        document = renamed_by_user(thread.model_dump(mode="json"), params.title)
        await self.store.save_thread(ThreadMetadata.model_validate(document), caller)

    async def add_feedback(
        self, thread_id: str, item_ids: list[str], feedback: FeedbackKind, caller: Caller
    ) -> None:
        await self.postgres.set_feedback(thread_id, item_ids, feedback, caller)

    async def transcribe(
        self,
        audio_input: AudioInput,
        context: Caller,  # the SDK passes it by this name
    ) -> TranscriptionResult:
        """``input.transcribe``: the dictated audio as the composer's text (docs/composer.md)."""
        return await self.transcriber.transcribe(audio_input)

    # --- widget actions (checked by check() before the SDK gets them) ---------------------------

    async def action(
        self,
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        caller: Caller,
    ) -> AsyncIterator[ThreadStreamEvent]:
        """``threads.custom_action``: the widget updated in place, the effect, a confirmation.

        The task change is one statement; should it fail after :meth:`check` passed (the task
        deleted meanwhile, in another tab), the stream says so with an error event.
        """
        try:
            outcome = await self.actions.run(thread, action, sender, caller)
        except AppError as exc:
            yield ErrorEvent(code="custom", message=exc.message, allow_retry=False)
            return
        yield ThreadItemUpdatedEvent(
            item_id=outcome.item.id, update=WidgetRootUpdated(widget=outcome.item.widget)
        )
        yield tasks_changed(outcome.event, [outcome.task.id])
        yield ThreadItemDoneEvent(
            item=AssistantMessageItem(
                id=self.store.generate_item_id("message", thread, caller),
                thread_id=thread.id,
                created_at=datetime.now(),
                content=[AssistantMessageContent(text=outcome.confirmation)],
            )
        )

    async def sync_action(
        self,
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        caller: Caller,
    ) -> SyncCustomActionResponse:
        """``threads.sync_custom_action``: the same change, answered with the updated item."""
        outcome = await self.actions.run(thread, action, sender, caller)
        return SyncCustomActionResponse(updated_item=outcome.item)


def message_chars(message: UserMessageInput) -> int:
    """The characters a message carries to the model: text, tags (label and data), quote."""
    return len(message.quoted_text or "") + sum(
        len(part.text)
        if isinstance(part, UserMessageTextContent)
        else len(part.text) + len(json.dumps(part.data, default=str))
        for part in message.content
    )


def item_chars(item: ThreadItem) -> int:
    """An item's size in characters as stored (its JSON): what it costs the prompt, roughly."""
    return len(item.model_dump_json(exclude_none=True))


def within_chars(newest_first: list[ThreadItem], budget: int) -> list[ThreadItem]:
    """The newest items (newest first) whose sizes fit ``budget``: older ones are dropped."""
    kept: list[ThreadItem] = []
    for item in newest_first:
        budget -= item_chars(item)
        if budget < 0:
            break
        kept.append(item)
    return kept


def _is_text(event: ThreadStreamEvent) -> bool:
    return isinstance(event, ThreadItemUpdatedEvent) and isinstance(
        event.update, AssistantMessageContentPartTextDelta
    )


def message_text(message: UserMessageItem) -> str:
    """The message's text, tags as ``@name``, whitespace collapsed."""
    text = " ".join(
        part.text if isinstance(part, UserMessageTextContent) else f"@{part.text}"
        for part in message.content
    )
    return re.sub(r"\s+", " ", text).strip()


def title_from(message: UserMessageItem) -> str:
    """The message text, whitespace collapsed, cut at a word boundary near 60 characters."""
    text = message_text(message) or "New conversation"
    if len(text) <= TITLE_MAX_CHARS:
        return text
    cut = text[: TITLE_MAX_CHARS - 1]
    if " " in cut[TITLE_MAX_CHARS // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:-") + "…"
