"""What tests do as the people on the other side of the fake Telegram server: register
users, write to the bot, press buttons, block it, replay updates, post to a webhook, and
read what the bot sent.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

from .records import Queued, RecordedCall, SentMessage, User, clone, command_entities

#: Sentinel for :meth:`FakeTelegramServer.post_to_webhook`: use the secret given to setWebhook.
CONFIGURED_SECRET: Final = "__configured__"


class DriverMixin:
    """The test-facing side of :class:`FakeTelegramServer`."""

    # Inspection

    def calls_to(self, method: str) -> list[RecordedCall]:
        """All recorded calls of ``method`` (case-insensitive, like Telegram's routing)."""
        wanted = method.lower()
        return [call for call in self.calls if call.method.lower() == wanted]

    def messages_to(self, chat_id: int) -> list[SentMessage]:
        """Messages the bot sent to ``chat_id`` in order, including deleted ones."""
        return list(self._sent.get(chat_id, []))

    def last_message(self, chat_id: int) -> SentMessage:
        """The most recent message sent to ``chat_id``; ``LookupError`` if there is none."""
        messages = self._sent.get(chat_id)
        if not messages:
            raise LookupError(f"the bot has sent no message to chat {chat_id}")
        return messages[-1]

    async def wait_for_messages(
        self, chat_id: int, count: int = 1, timeout: float = 5.0
    ) -> list[SentMessage]:
        """Wait until at least ``count`` messages were sent to ``chat_id``; return all of them.

        Raises ``TimeoutError`` describing what was sent and the latest calls otherwise.
        """
        deadline = time.monotonic() + timeout
        while True:
            messages = self.messages_to(chat_id)
            remaining = deadline - time.monotonic()
            if len(messages) >= count:
                return messages
            if remaining <= 0 or self._stopping.is_set():
                raise TimeoutError(self._wait_failure(chat_id, count, timeout, messages))
            await self._messages_signal.wait(remaining)

    def bot_commands(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, Any]]:
        """Commands stored by setMyCommands for a scope (default scope if ``None``)."""
        return list(self._commands.get(self._commands_key(scope, language_code), []))

    def command_calls(self) -> list[dict[str, Any]]:
        """Every setMyCommands and deleteMyCommands call, in order, as ``{"method", "scope",
        "language_code", "commands", "status"}``: the scope as sent (``{"type": "default"}``
        when none was), the language ``""`` when none was, the commands as ``(command,
        description)`` pairs (empty for a deletion)."""
        return [
            {
                "method": call.method,
                "scope": call.params.get("scope") or {"type": "default"},
                "language_code": str(call.params.get("language_code") or ""),
                "commands": [
                    (c.get("command"), c.get("description"))
                    for c in call.params.get("commands") or []
                    if isinstance(c, dict)
                ],
                "status": call.status,
            }
            for call in self.calls
            if call.method in ("setMyCommands", "deleteMyCommands")
        ]

    def commands_shown(self, user_id: int) -> list[str]:
        """The commands ``user_id`` sees on typing "/" in their private chat with the bot: the
        most specific list that is set, in Telegram's order (the chat's with the user's app
        language, the chat's, all private chats' with the language and without, the default's
        with the language and without)."""
        language = self._user(user_id).language_code or ""
        chat = {"type": "chat", "chat_id": user_id}
        private = {"type": "all_private_chats"}
        for scope in (chat, private, None):
            for code in (language, "") if language else ("",):
                commands = self._commands.get(self._commands_key(scope, code))
                if commands:
                    return [str(c["command"]) for c in commands]
        return []

    @property
    def pending_update_count(self) -> int:
        """Updates queued but not yet confirmed (polling) or delivered (webhook)."""
        return len(self._pending)

    @property
    def webhook_url(self) -> str:
        """The URL set by setWebhook ("" in polling mode)."""
        return self._webhook_url

    # People

    def add_user(
        self,
        user_id: int,
        first_name: str,
        *,
        username: str | None = None,
        language_code: str | None = "en",
    ) -> None:
        """Register a person; their private chat with the bot has ``chat_id == user_id``."""
        self._users[user_id] = User(user_id, first_name, username, language_code)
        self._sent.setdefault(user_id, [])

    def block(self, user_id: int) -> None:
        """The user blocks the bot: every later send to their chat answers 403."""
        self._blocked.add(user_id)

    def unblock(self, user_id: int) -> None:
        """Undo :meth:`block`."""
        self._blocked.discard(user_id)

    async def send_text(self, user_id: int, text: str) -> int:
        """The user writes ``text`` to the bot; queues a ``message`` update, returns its id.

        ``/command`` tokens get ``bot_command`` entities like Telegram adds them.
        """
        user = self._user(user_id)
        message_id = self._new_message_id()
        self._incoming_ids.setdefault(user_id, set()).add(message_id)
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": user.user_json(),
            "chat": user.chat_json(),
            "date": int(time.time()),
            "text": text,
        }
        entities = command_entities(text)
        if entities:
            message["entities"] = entities
        update_id = self.enqueue_raw_update({"message": message})
        await asyncio.sleep(0)  # let a waiting long poll pick it up promptly
        return update_id

    async def press(self, user_id: int, label: str, *, message_id: int | None = None) -> int:
        """The user presses the inline button labelled ``label``; returns the update id.

        Uses message ``message_id`` or, by default, the latest non-deleted message in the chat
        that carries an inline keyboard.  ``LookupError`` if there is no such button.
        """
        self._user(user_id)
        if message_id is None:
            candidates = [
                msg for msg in self._sent.get(user_id, []) if msg.reply_markup and not msg.deleted
            ]
            if not candidates:
                raise LookupError(f"no message with an inline keyboard in chat {user_id}")
            message = candidates[-1]
        else:
            found = self._sent_by_id.get(message_id)
            if found is None or found.chat_id != user_id or found.deleted:
                raise LookupError(f"no bot message {message_id} in chat {user_id}")
            message = found
        for text, data in message.buttons():
            if text == label:
                return await self.press_data(user_id, message.message_id, data)
        raise LookupError(
            f"no callback button {label!r} on message {message.message_id} in chat {user_id}; "
            f"buttons: {message.buttons()!r}"
        )

    async def press_data(self, user_id: int, message_id: int, callback_data: str) -> int:
        """Queue a ``callback_query`` with arbitrary (possibly forged) ``callback_data``.

        If ``message_id`` is not a live bot message in that chat, the query carries an
        inaccessible message (``date`` 0), as Telegram does for old/unknown messages.
        """
        user = self._user(user_id)
        message = self._sent_by_id.get(message_id)
        if message is not None and message.chat_id == user_id and not message.deleted:
            message_json = self._message_json(message)
        else:
            message_json = {"chat": user.chat_json(), "message_id": message_id, "date": 0}
        query_id = str(self._next_callback_id)
        self._next_callback_id += 1
        self._callback_ids.add(query_id)
        update_id = self.enqueue_raw_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user.user_json(),
                    "message": message_json,
                    "chat_instance": str(9_000_000_000 + user_id),
                    "data": callback_data,
                }
            }
        )
        await asyncio.sleep(0)
        return update_id

    def enqueue_raw_update(self, update: dict[str, Any]) -> int:
        """Queue an arbitrary update; assigns ``update_id`` if missing; returns the id."""
        update = clone(update)
        if "update_id" not in update:
            update["update_id"] = self._next_update_id
        update_id = int(update["update_id"])
        self._next_update_id = max(self._next_update_id, update_id + 1)
        self._history[update_id] = update
        self._pending.append(Queued(update))
        self._updates_signal.notify()
        return update_id

    def redeliver(self, update_id: int) -> None:
        """Queue the very same update (same ``update_id``) again, i.e. a duplicate delivery.

        The duplicate is delivered even if the client already confirmed that id via ``offset``
        (that is the point: the bot must be idempotent).  In a getUpdates answer duplicates come
        first, so PTB's "last id + 1" offset logic is not thrown back.
        """
        try:
            update = self._history[update_id]
        except KeyError:
            raise LookupError(f"unknown update_id {update_id}") from None
        self._pending.append(Queued(clone(update), forced=True))
        self._updates_signal.notify()

    # Webhook

    async def post_to_webhook(
        self, update: dict[str, Any], *, secret: str | None = CONFIGURED_SECRET
    ) -> int:
        """POST ``update`` once to the configured webhook; return the receiver's HTTP status.

        ``secret``: header value to send; ``None`` sends no header; the default sends the
        secret configured with setWebhook (if any).  Not recorded in ``webhook_deliveries``
        and not queued.  An ``update_id`` is assigned if missing.  Connection errors propagate
        as ``aiohttp.ClientError``.
        """
        if not self._webhook_url:
            raise RuntimeError("no webhook is set")
        if self._session is None:
            raise RuntimeError("server is not running")
        update = clone(update)
        if "update_id" not in update:
            update["update_id"] = self._next_update_id
            self._next_update_id += 1
        header = self._webhook_secret if secret == CONFIGURED_SECRET else secret
        headers = {"X-Telegram-Bot-Api-Secret-Token": header} if header is not None else {}
        async with self._session.post(self._webhook_url, json=update, headers=headers) as resp:
            await resp.read()
            return resp.status

    def _wait_failure(
        self, chat_id: int, count: int, timeout: float, messages: list[SentMessage]
    ) -> str:
        sent = [
            m.text if m.text is not None else f"<media caption={m.caption!r}>" for m in messages
        ]
        recent = [
            f"{c.method}(chat_id={c.params.get('chat_id')!r}) -> {c.status}"
            for c in self.calls[-10:]
            if c.method != "getUpdates"
        ]
        return (
            f"expected at least {count} message(s) to chat {chat_id} within {timeout}s, "
            f"got {len(messages)}: {sent!r}; pending updates: {len(self._pending)}; "
            f"recent non-polling calls: {recent!r}"
        )
