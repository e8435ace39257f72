"""The Bot API methods of the fake Telegram server and the HTTP layer that routes
``/bot{token}/{method}`` requests to them (faults first, then blocking and flood control).
"""

from __future__ import annotations

import json
import time
from typing import Any, Final

from aiohttp import web

from .faults import BLOCKABLE_METHODS
from .limits import RATE_LIMITED_METHODS
from .records import (
    COMMAND_SCOPES,
    ApiError,
    Handler,
    Queued,
    RecordedCall,
    SentMessage,
    StoredFile,
    Upload,
    User,
    as_int,
    clone,
    decode_param,
    image_size,
    is_loopback_url,
    update_type,
)

_NOT_MODIFIED: Final = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


class ApiMixin:
    """Bot API emulation of :class:`FakeTelegramServer`."""

    def _remove_pending(self, entry: Queued) -> None:
        # Identity, not equality: a redelivered duplicate compares equal to its original.
        for index, queued in enumerate(self._pending):
            if queued is entry:
                del self._pending[index]
                return

    # HTTP layer

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        at = time.monotonic()
        params, uploads = await self._read_params(request)
        raw_method = request.match_info["method"]
        known = self._methods.get(raw_method.lower())
        record = RecordedCall(
            method=known[0] if known else raw_method,
            params=params,
            status=0,
            at=at,
            files={name: upload.data for name, upload in uploads.items()},
        )
        self.calls.append(record)

        if request.match_info["token"] != self.token:
            return self._respond(record, ApiError(401, "Unauthorized"))
        if known is None:
            return self._respond(record, ApiError(404, "Not Found: method not found"))
        method, handler = known
        chat_id = as_int(params.get("chat_id"))

        fault = self._take_fault(method, chat_id)
        if fault is None:
            return self._respond(record, await self._dispatch(method, handler, params, uploads))
        if fault.kind == "timeout":
            # Carry the call out first so the outcome exists although the client gives up.
            outcome = await self._dispatch(method, handler, params, uploads)
            response = self._respond(record, outcome)
            await self._sleep(fault.delay)
            return response
        if fault.delay > 0:
            await self._sleep(fault.delay)
        if fault.kind == "reset":
            record.status = 0
            return self._reset(request)
        return self._respond(record, self._fault_error(fault))

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
        raw: dict[str, Any] = dict(request.query)
        uploads: dict[str, Upload] = {}
        if request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    raw.update(body)
            else:
                form = await request.post()
                for name, value in form.items():
                    if isinstance(value, web.FileField):
                        uploads[name] = Upload(
                            value.file.read(), value.filename, value.content_type
                        )
                    else:
                        raw[name] = value
        params = {name: decode_param(name, value) for name, value in raw.items()}
        return params, uploads

    def _respond(self, record: RecordedCall, outcome: Any) -> web.Response:
        if isinstance(outcome, ApiError):
            record.status = outcome.status
            return web.json_response(outcome.body(), status=outcome.status)
        record.status = 200
        return web.json_response({"ok": True, "result": outcome})

    async def _dispatch(
        self,
        method: str,
        handler: Handler,
        params: dict[str, Any],
        uploads: dict[str, Upload],
    ) -> Any:
        """Run a method with blocking and flood control; returns a result or an ``ApiError``."""
        chat_id = as_int(params.get("chat_id"))
        if method in BLOCKABLE_METHODS and chat_id in self._blocked:
            return ApiError(403, "Forbidden: bot was blocked by the user")
        limited = method in RATE_LIMITED_METHODS and chat_id is not None
        now = time.monotonic()
        if limited:
            assert chat_id is not None
            flood = self._flood_error(chat_id, now)
            if flood is not None:
                return flood
        try:
            result = await handler(params, uploads)
        except ApiError as error:
            return error
        if limited:
            assert chat_id is not None
            for bucket in (self._global_bucket, self._chat_bucket(chat_id)):
                if bucket is not None:
                    bucket.take(now)
        return result

    # Helpers

    def _user(self, user_id: int) -> User:
        try:
            return self._users[user_id]
        except KeyError:
            raise LookupError(f"unknown user {user_id}; call add_user() first") from None

    def _new_message_id(self) -> int:
        message_id = self._next_message_id
        self._next_message_id += 1
        return message_id

    def _bot_json(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Fidelio",
            "username": self.bot_username,
        }

    def _target_chat(self, params: dict[str, Any]) -> User:
        chat_id = as_int(params.get("chat_id"))
        if chat_id is None:
            if "chat_id" not in params:
                raise ApiError(400, "Bad Request: chat_id is empty")
            raise ApiError(400, "Bad Request: chat not found")
        user = self._users.get(chat_id)
        if user is None:
            raise ApiError(400, "Bad Request: chat not found")
        return user

    def _message_json(self, message: SentMessage) -> dict[str, Any]:
        user = self._users[message.chat_id]
        data: dict[str, Any] = {
            "message_id": message.message_id,
            "from": self._bot_json(),
            "chat": user.chat_json(),
            "date": self._message_dates[message.message_id],
        }
        if message.message_id in self._edit_dates:
            data["edit_date"] = self._edit_dates[message.message_id]
        if message.text is not None:
            data["text"] = message.text
        data.update(clone(self._media_json.get(message.message_id, {})))
        if message.caption is not None:
            data["caption"] = message.caption
        if message.reply_markup:
            data["reply_markup"] = clone(message.reply_markup)
        return data

    def _store_message(self, message: SentMessage) -> dict[str, Any]:
        self._message_dates[message.message_id] = int(time.time())
        self._sent.setdefault(message.chat_id, []).append(message)
        self._sent_by_id[message.message_id] = message
        self._messages_changed(message)
        return self._message_json(message)

    def _messages_changed(self, message: SentMessage) -> None:
        """A message was sent or edited: wake waiters and tell the observers."""
        self._messages_signal.notify()
        for observer in self.message_observers:
            observer(message)

    def _message_to_edit(self, params: dict[str, Any]) -> SentMessage:
        if "inline_message_id" in params:
            raise ApiError(400, "Bad Request: inline messages are not supported by the fake")
        user = self._target_chat(params)
        message_id = as_int(params.get("message_id"))
        message = self._sent_by_id.get(message_id) if message_id is not None else None
        if message is None or message.chat_id != user.user_id or message.deleted:
            raise ApiError(400, "Bad Request: message to edit not found")
        return message

    def _new_file_ids(self) -> tuple[str, str]:
        number = self._next_file_id
        self._next_file_id += 1
        return f"FAKEFILE{number:06d}-{self.bot_id}", f"FAKEUNIQ{number:06d}"

    def _resolve_file(
        self, field_name: str, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> StoredFile | None:
        """Stored file for an upload or a known file_id; ``None`` for an (unfetched) URL."""
        upload = uploads.get(field_name)
        if upload is None:
            reference = params.get(field_name)
            # attach://name references an upload under another field name.
            if isinstance(reference, str) and reference.startswith("attach://"):
                upload = uploads.get(reference.removeprefix("attach://"))
        if upload is not None:
            file_id, unique_id = self._new_file_ids()
            stored = StoredFile(
                upload.data, file_id, unique_id, upload.filename, upload.content_type
            )
            self._files[file_id] = stored
            return stored
        reference = params.get(field_name)
        if not isinstance(reference, str) or not reference:
            raise ApiError(400, f"Bad Request: there is no {field_name} in the request")
        if reference in self._files:
            return self._files[reference]
        if reference.startswith(("http://", "https://")):
            return None  # never fetched: this fake does not touch the network
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    @staticmethod
    def _commands_key(scope: Any, language_code: Any) -> tuple[str, str]:
        scope = scope if isinstance(scope, dict) else {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(language_code or "")

    def _check_command_scope(self, params: dict[str, Any]) -> None:
        """Refuse a scope or language Telegram would: an unknown scope type, a chat scope for
        a chat the bot has no private chat with, a language that is not a two-letter code."""
        scope = params.get("scope")
        if scope is not None:
            if not isinstance(scope, dict) or scope.get("type") not in COMMAND_SCOPES:
                raise ApiError(400, "Bad Request: can't parse BotCommandScope JSON object")
            if scope["type"] in {"chat", "chat_administrators", "chat_member"}:
                self._target_chat(scope)
        language = params.get("language_code")
        if language not in (None, "") and not (
            isinstance(language, str) and len(language) == 2 and language.isalpha()
        ):
            raise ApiError(400, "Bad Request: invalid language code specified")

    # Methods

    async def _m_true(self, params: dict[str, Any], uploads: dict[str, Upload]) -> bool:
        return True

    async def _m_get_me(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        return {
            **self._bot_json(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _m_get_updates(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        if self._webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = as_int(params.get("offset"))
        limit = as_int(params.get("limit"))
        limit = 100 if limit is None else min(max(limit, 1), 100)
        timeout_value = params.get("timeout", 0)
        timeout = float(timeout_value) if isinstance(timeout_value, int | float) else 0.0
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            # Like Telegram, the setting persists; an empty list means "all (default) types".
            self._allowed_updates = set(allowed) or None
        if offset is not None:
            self._confirm(offset)
        deadline = time.monotonic() + timeout
        while True:
            batch = self._take_batch(limit)
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0 or self._stopping.is_set() or self._webhook_url:
                return batch
            await self._updates_signal.wait(remaining)

    def _confirm(self, offset: int) -> None:
        """Forget regular updates confirmed by ``offset`` (negative: keep only the last -N)."""
        regular = sorted(
            (q for q in self._pending if not q.forced), key=lambda q: q.update["update_id"]
        )
        if offset < 0:
            dropped = regular[: max(len(regular) + offset, 0)]
        else:
            dropped = [q for q in regular if q.update["update_id"] < offset]
        for entry in dropped:
            self._remove_pending(entry)

    def _take_batch(self, limit: int) -> list[dict[str, Any]]:
        if self._allowed_updates is not None:
            # Telegram never delivers updates of types the bot did not ask for.
            for entry in list(self._pending):
                if update_type(entry.update) not in self._allowed_updates:
                    self._remove_pending(entry)
        forced = [q for q in self._pending if q.forced][:limit]
        regular = sorted(
            (q for q in self._pending if not q.forced), key=lambda q: q.update["update_id"]
        )
        batch = forced + regular[: limit - len(forced)]
        for entry in forced:
            # Duplicates are fire-and-forget: they cannot be confirmed by offset.
            self._remove_pending(entry)
        return [clone(entry.update) for entry in batch]

    async def _m_send_message(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        user = self._target_chat(params)
        text = params.get("text")
        text = "" if text is None else str(text)
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        self._check_text_length(text)
        message = SentMessage(
            message_id=self._new_message_id(),
            chat_id=user.user_id,
            text=text,
            parse_mode=params.get("parse_mode"),
            reply_markup=self._parse_markup(params.get("reply_markup")),
        )
        return self._store_message(message)

    async def _m_edit_message_text(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        message = self._message_to_edit(params)
        if message.text is None:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text = params.get("text")
        text = "" if text is None else str(text)
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        # As on Telegram, omitting reply_markup in an edit removes the inline keyboard.
        markup = self._parse_markup(params.get("reply_markup"))
        parse_mode = params.get("parse_mode")
        if (text, parse_mode, markup) == (message.text, message.parse_mode, message.reply_markup):
            raise ApiError(400, _NOT_MODIFIED)
        message.text, message.parse_mode, message.reply_markup = text, parse_mode, markup
        message.edits.append(dict(params))
        self._edit_dates[message.message_id] = int(time.time())
        self._messages_changed(message)
        return self._message_json(message)

    async def _m_edit_message_reply_markup(
        self, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        message = self._message_to_edit(params)
        markup = self._parse_markup(params.get("reply_markup"))
        if markup == message.reply_markup:
            raise ApiError(400, _NOT_MODIFIED)
        message.reply_markup = markup
        message.edits.append(dict(params))
        self._edit_dates[message.message_id] = int(time.time())
        self._messages_changed(message)
        return self._message_json(message)

    async def _m_answer_callback_query(
        self, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        # Answering the same query twice is tolerated (and recorded twice) to keep retry tests
        # simple; unknown ids fail like expired queries do on Telegram.
        if str(params.get("callback_query_id")) not in self._callback_ids:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        self.answered_callbacks.append(dict(params))
        return True

    def _file_message(
        self, kind: str, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> tuple[SentMessage, StoredFile | None]:
        """A message (not stored yet) carrying the request's caption, for its ``kind`` file;
        and that file as stored (``None`` for an unfetched URL)."""
        user = self._target_chat(params)
        caption = self._caption(params)
        stored = self._resolve_file(kind, params, uploads)
        message = SentMessage(
            message_id=self._new_message_id(),
            chat_id=user.user_id,
            text=None,
            parse_mode=params.get("parse_mode"),
            reply_markup=self._parse_markup(params.get("reply_markup")),
            caption=caption,
        )
        return message, stored

    async def _m_send_photo(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        message, stored = self._file_message("photo", params, uploads)
        message.photo = stored.data if stored else None
        if stored is not None:
            width, height = image_size(stored.data)
            file_id, unique_id, size = stored.file_id, stored.file_unique_id, len(stored.data)
        else:
            width, height = 100, 100
            file_id, unique_id = self._new_file_ids()
            size = 0
        self._media_json[message.message_id] = {
            "photo": [
                {
                    "file_id": file_id,
                    "file_unique_id": unique_id,
                    "width": width,
                    "height": height,
                    "file_size": size,
                }
            ]
        }
        return self._store_message(message)

    async def _m_send_document(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        message, stored = self._file_message("document", params, uploads)
        message.document = stored.data if stored else None
        message.document_name = stored.file_name if stored else None
        document: dict[str, Any]
        if stored is not None:
            document = {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.data),
            }
            if stored.file_name:
                document["file_name"] = stored.file_name
            if stored.mime_type:
                document["mime_type"] = stored.mime_type
        else:
            file_id, unique_id = self._new_file_ids()
            document = {"file_id": file_id, "file_unique_id": unique_id}
        self._media_json[message.message_id] = {"document": document}
        return self._store_message(message)

    async def _m_delete_message(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        user = self._target_chat(params)
        message_id = as_int(params.get("message_id"))
        message = self._sent_by_id.get(message_id) if message_id is not None else None
        if message is not None and message.chat_id == user.user_id and not message.deleted:
            message.deleted = True
            self._messages_signal.notify()
            return True
        incoming = self._incoming_ids.get(user.user_id, set())
        if message_id in incoming:
            incoming.discard(message_id)
            return True
        raise ApiError(400, "Bad Request: message to delete not found")

    async def _m_set_webhook(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        url = str(params.get("url") or "")
        if url and not is_loopback_url(url):
            # Safety net: the fake must never send anything off this machine.
            raise ApiError(
                400, "Bad Request: bad webhook: the fake only delivers to loopback addresses"
            )
        if params.get("drop_pending_updates") is True:
            self._pending.clear()
        secret = params.get("secret_token")
        self._webhook_url = url
        self._webhook_secret = str(secret) if secret else None
        allowed = params.get("allowed_updates")
        self._webhook_allowed = allowed if isinstance(allowed, list) else None
        self._webhook_last_error = None
        self._updates_signal.notify()  # wakes the delivery worker and any held long poll
        return True

    async def _m_delete_webhook(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        if params.get("drop_pending_updates") is True:
            self._pending.clear()
        self._webhook_url = ""
        self._webhook_secret = None
        self._webhook_allowed = None
        self._updates_signal.notify()
        return True

    async def _m_get_webhook_info(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        info: dict[str, Any] = {
            "url": self._webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self._webhook_url:
            info["max_connections"] = 40
            info["ip_address"] = "127.0.0.1"
            if self._webhook_allowed is not None:
                info["allowed_updates"] = self._webhook_allowed
            if self._webhook_last_error is not None:
                info["last_error_date"], info["last_error_message"] = self._webhook_last_error
        return info

    async def _m_set_my_commands(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        commands = params.get("commands")
        self._check_commands(commands)
        self._check_command_scope(params)
        key = self._commands_key(params.get("scope"), params.get("language_code"))
        self._commands[key] = clone(commands)
        return True

    async def _m_get_my_commands(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        return self.bot_commands(params.get("scope"), str(params.get("language_code") or ""))

    async def _m_delete_my_commands(
        self, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        self._check_command_scope(params)
        self._commands.pop(
            self._commands_key(params.get("scope"), params.get("language_code")), None
        )
        return True

    async def _m_send_chat_action(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        self._target_chat(params)
        if not params.get("action"):
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True
