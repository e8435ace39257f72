"""The Web API methods of the fake Slack, the HTTP layer that routes ``/api/{method}``
to them (faults first, then rate limits and token checks), and the other endpoints the app
talks to: the upload URL of ``files_upload_v2`` and the ``response_url`` of interactions.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import secrets
import time
from typing import Any

from aiohttp import web

from .records import (
    EXEMPT_METHODS,
    UPLOAD_METHOD,
    PostedMessage,
    RecordedCall,
    SlackUser,
    parse_json_field,
    truthy,
    zone_offset,
)


class ApiMixin:
    """Slack Web API emulation of :class:`FakeSlackServer`."""

    # Web API plumbing

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = dict(request.query)
        files: dict[str, bytes] = {}
        if request.method != "POST" or not request.body_exists:
            return params, files
        ctype = request.content_type
        if ctype == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        elif ctype in {"application/x-www-form-urlencoded", "multipart/form-data"}:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                else:
                    params[key] = value
        return params, files

    @staticmethod
    def _token_of(request: web.Request, params: dict[str, Any]) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[len("Bearer ") :].strip()
        token = params.get("token")
        return str(token) if token else None

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params, files = await self._read_params(request)
        call = RecordedCall(
            method=method, params=params, status=0, at=time.monotonic(), files=files
        )
        self.calls.append(call)

        fault = self._take_fault(method, params)
        if fault is not None and fault.kind == "reset":
            return self._drop_connection(request)
        if fault is not None and fault.kind not in ("timeout", "lost_answer"):
            response = self._fault_response(fault)
        else:
            response = self._process_api(method, params, files, self._token_of(request, params))
        if fault is not None and fault.kind == "lost_answer":
            # Side effects happened above; the answer never leaves.
            return self._drop_connection(request)
        call.status = response.status
        if response.status == 429:
            self.rate_limited += 1
        if fault is not None and fault.kind == "timeout":
            # Side effects already happened above; only the answer is late.
            await self._sleep_unless_stopping(fault.delay)
        return response

    def _process_api(
        self, method: str, params: dict[str, Any], files: dict[str, bytes], token: str | None
    ) -> web.Response:
        handler = self._handlers().get(method)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method", "req_method": method})

        if method not in EXEMPT_METHODS:
            limited = self._check_rate_limits(method, params)
            if limited is not None:
                return limited

        # Slack answers auth failures with HTTP 200. An app-level token on a bot method (or the
        # reverse) is "not_allowed_token_type" on Slack, which catches wiring the wrong token.
        expected, other = (
            (self.app_token, self.bot_token)
            if method == "apps.connections.open"
            else (self.bot_token, self.app_token)
        )
        if token != expected:
            error = "not_allowed_token_type" if token == other else "invalid_auth"
            return web.json_response({"ok": False, "error": error})

        body = handler(params, files)
        return web.json_response(body)

    def _handlers(self) -> dict[str, Any]:
        return {
            "auth.test": self._api_auth_test,
            "apps.connections.open": self._api_connections_open,
            "users.lookupByEmail": self._api_users_lookup_by_email,
            "users.info": self._api_users_info,
            "conversations.open": self._api_conversations_open,
            "conversations.history": self._api_conversations_history,
            "chat.postMessage": self._api_chat_post_message,
            "chat.update": self._api_chat_update,
            "chat.postEphemeral": self._api_chat_post_ephemeral,
            "chat.delete": self._api_chat_delete,
            "views.open": functools.partial(self._api_views, "views.open"),
            "views.push": functools.partial(self._api_views, "views.push"),
            "views.update": functools.partial(self._api_views, "views.update"),
            "views.publish": functools.partial(self._api_views, "views.publish"),
            "files.getUploadURLExternal": self._api_get_upload_url,
            "files.completeUploadExternal": self._api_complete_upload,
        }

    # Helpers shared by methods

    def _next_ts(self) -> str:
        """Unique, strictly increasing, wall-clock-ish Slack ts ("1700000000.000100")."""
        now_us = time.time_ns() // 1000
        self._last_ts_us = max(now_us, self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def _user_seen(self, user_id: str) -> bool:
        return user_id in self._users or user_id in self._dm_by_user

    def _resolve_channel(self, channel: str) -> str:
        """User ids stand for their DM (as chat.postMessage allows); everything else is as-is."""
        if channel[:1] in {"U", "W"} and self._user_seen(channel):
            return self.dm_channel_of(channel)
        return channel

    def _channel_exists(self, channel: str) -> bool:
        """Channels are not modelled (any C/G id exists); a DM must have been opened."""
        if channel.startswith("D"):
            return channel in self._user_by_dm
        return channel[:1] in {"C", "G"}

    def _user_name(self, user_id: str) -> str:
        user = self._users.get(user_id)
        return user.name if user is not None else user_id.lower()

    def _user_obj(self, user: SlackUser, *, include_locale: bool) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": user.id,
            "team_id": self.team_id,
            "name": user.name,
            "deleted": user.deleted,
            "real_name": user.name,
            "tz": user.tz,
            "tz_label": user.tz,
            "tz_offset": zone_offset(user.tz),
            "is_bot": user.is_bot,
            "is_app_user": False,
            "profile": {
                "email": user.email,
                "real_name": user.name,
                "display_name": user.name,
                "team": self.team_id,
            },
        }
        # Like Slack, locale is only returned on request (users.info include_locale=true).
        if include_locale:
            obj["locale"] = user.locale
        return obj

    def _message_obj(self, msg: PostedMessage, *, with_metadata: bool = True) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.api_app_id,
            "team": self.team_id,
            "ts": msg.ts,
            "text": msg.text or "",
        }
        if msg.blocks is not None:
            obj["blocks"] = copy.deepcopy(msg.blocks)
        if msg.thread_ts:
            obj["thread_ts"] = msg.thread_ts
        if msg.metadata is not None and with_metadata:
            obj["metadata"] = copy.deepcopy(msg.metadata)
        return obj

    @staticmethod
    def _with_block_ids(blocks: list[dict], salt: str) -> list[dict]:
        """Copy blocks, filling in missing block_ids the way Slack does on post."""
        result = copy.deepcopy(blocks)
        for i, block in enumerate(result):
            if isinstance(block, dict) and not block.get("block_id"):
                block["block_id"] = hashlib.sha1(f"{salt}:{i}".encode()).hexdigest()[:5]
        return result

    def _find_message(self, channel: str, ts: str) -> PostedMessage | None:
        for msg in self._messages.get(channel, []):
            if msg.ts == ts:
                return msg
        return None

    def _post(
        self,
        channel: str,
        text: str | None,
        blocks: list[dict] | None,
        thread_ts: str | None,
        metadata: dict | None = None,
    ) -> PostedMessage:
        ts = self._next_ts()
        msg = PostedMessage(
            ts=ts,
            channel=channel,
            text=text,
            blocks=self._with_block_ids(blocks, ts) if blocks is not None else None,
            thread_ts=thread_ts or None,
            metadata=metadata,
        )
        self._messages.setdefault(channel, []).append(msg)
        return msg

    # Web API methods

    def _api_auth_test(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": "fidelio",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _api_connections_open(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        ticket = secrets.token_hex(8)
        self._tickets.add(ticket)
        port = self._port
        return {
            "ok": True,
            "url": f"ws://127.0.0.1:{port}/socket?ticket={ticket}&app_id={self.api_app_id}",
        }

    def _api_users_lookup_by_email(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        email = str(params.get("email", "")).strip().lower()
        for user in self._users.values():
            if user.email.lower() == email:
                return {"ok": True, "user": self._user_obj(user, include_locale=False)}
        return {"ok": False, "error": "users_not_found"}

    def _api_users_info(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        user = self._users.get(str(params.get("user", "")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        include_locale = truthy(params.get("include_locale", False))
        return {"ok": True, "user": self._user_obj(user, include_locale=include_locale)}

    def _api_conversations_open(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        channel = params.get("channel")
        if channel:
            if not self._channel_exists(str(channel)):
                return {"ok": False, "error": "channel_not_found"}
            return {"ok": True, "no_op": True, "already_open": True, "channel": {"id": channel}}
        users = [u.strip() for u in str(params.get("users") or "").split(",") if u.strip()]
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        if len(users) > 1:
            # Multi-party DMs are out of Fidelio's scope; fail loudly rather than fake them.
            return {"ok": False, "error": "not_supported_by_fake"}
        user_id = users[0]
        if not self._user_seen(user_id):
            return {"ok": False, "error": "user_not_found"}
        user = self._users.get(user_id)
        if user is not None and user.deleted:
            return {"ok": False, "error": "user_disabled"}
        already_open = user_id in self._dm_by_user
        dm = self.dm_channel_of(user_id)
        channel_obj: dict[str, Any] = {"id": dm}
        if truthy(params.get("return_im", False)):
            channel_obj.update({"is_im": True, "user": user_id, "is_open": True})
        return {
            "ok": True,
            "no_op": already_open,
            "already_open": already_open,
            "channel": channel_obj,
        }

    def _api_chat_post_message(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        raw_channel = params.get("channel")
        if not raw_channel:
            return {"ok": False, "error": "channel_not_found"}
        channel = self._resolve_channel(str(raw_channel))
        if not self._channel_exists(channel):
            return {"ok": False, "error": "channel_not_found"}
        # Posting to a deactivated user's DM succeeds on Slack (python-slack-sdk#1156): callers
        # must check users.info `deleted` themselves, so the fake does not help them here.
        text, blocks, error = self._content_of(params)
        if error is not None:
            return error
        if not text and not blocks and not params.get("attachments"):
            return {"ok": False, "error": "no_text"}
        metadata = parse_json_field(params.get("metadata"))
        if metadata is not None and (
            not isinstance(metadata, dict)
            or not isinstance(metadata.get("event_type"), str)
            or not isinstance(metadata.get("event_payload"), dict)
        ):
            return {"ok": False, "error": "invalid_metadata_format"}
        msg = self._post(channel, text, blocks, params.get("thread_ts"), metadata)
        return {"ok": True, "channel": channel, "ts": msg.ts, "message": self._message_obj(msg)}

    def _api_chat_update(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        channel = self._resolve_channel(str(params.get("channel", "")))
        msg = self._find_message(channel, str(params.get("ts", "")))
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        text, blocks, error = self._content_of(params)
        if error is not None:
            return error
        # Slack keeps the previous blocks when `blocks` is omitted (send [] to clear them).
        if text is not None:
            msg.text = text
        if blocks is not None:
            msg.blocks = self._with_block_ids(blocks, f"{msg.ts}:{len(msg.updates)}")
        update = dict(params)
        if blocks is not None:
            update["blocks"] = blocks
        msg.updates.append(update)
        return {
            "ok": True,
            "channel": channel,
            "ts": msg.ts,
            "text": msg.text or "",
            "message": self._message_obj(msg),
        }

    def _api_chat_post_ephemeral(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        channel = self._resolve_channel(str(params.get("channel", "")))
        if not self._channel_exists(channel):
            return {"ok": False, "error": "channel_not_found"}
        user = str(params.get("user", ""))
        if not self._user_seen(user):
            return {"ok": False, "error": "user_not_in_channel"}
        text, blocks, error = self._content_of(params)
        if error is not None:
            return error
        if not text and not blocks and not params.get("attachments"):
            return {"ok": False, "error": "no_text"}
        ts = self._next_ts()
        self.ephemerals.append(
            {
                "channel": channel,
                "user": user,
                "text": text,
                "blocks": blocks,
                "message_ts": ts,
                "thread_ts": params.get("thread_ts"),
            }
        )
        return {"ok": True, "message_ts": ts}

    def _api_chat_delete(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        channel = self._resolve_channel(str(params.get("channel", "")))
        msg = self._find_message(channel, str(params.get("ts", "")))
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        self._messages[channel].remove(msg)
        self.deleted_messages.append(msg)
        return {"ok": True, "channel": channel, "ts": msg.ts}

    def _api_views(
        self, method: str, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        """views.open / push / update / publish share one shape; ``method`` tells them apart."""
        view = parse_json_field(params.get("view"))
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        if method in {"views.open", "views.push"}:
            trigger_id = params.get("trigger_id")
            if not trigger_id:
                return {"ok": False, "error": "invalid_arguments"}
            if trigger_id in self._used_triggers:
                return {"ok": False, "error": "exchanged_trigger_id"}
            issued = self._triggers.pop(str(trigger_id), None)
            if issued is None:
                return {"ok": False, "error": "invalid_trigger_id"}
            self._used_triggers.add(str(trigger_id))
            if time.monotonic() - issued > self.trigger_ttl:
                return {"ok": False, "error": "expired_trigger_id"}
        view_id: str
        if method == "views.update":
            view_id = str(params.get("view_id") or "")
            external_id = params.get("external_id")
            if not view_id and external_id:
                view_id = next(
                    (
                        vid
                        for vid, v in self._view_objs.items()
                        if v.get("external_id") == external_id
                    ),
                    "",
                )
            if view_id not in self._view_objs:
                return {"ok": False, "error": "not_found"}
            if params.get("hash") and params["hash"] != self._view_objs[view_id]["hash"]:
                return {"ok": False, "error": "hash_conflict"}
        elif method == "views.publish":
            if not params.get("user_id"):
                return {"ok": False, "error": "invalid_arguments"}
            view_id = (
                next(
                    (
                        vid
                        for vid, v in self._view_objs.items()
                        if v.get("type") == "home" and v.get("_user_id") == params["user_id"]
                    ),
                    "",
                )
                or self._new_view_id()
            )
        else:
            view_id = self._new_view_id()
        stored = {
            **copy.deepcopy(view),
            "id": view_id,
            "team_id": self.team_id,
            "app_id": self.api_app_id,
            "bot_id": self.bot_id,
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "state": {"values": {}},
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
        }
        if method == "views.publish":
            stored["_user_id"] = params["user_id"]
        self._view_objs[view_id] = stored
        self.views.append({**params, "view": view, "method": method})
        return {"ok": True, "view": {k: v for k, v in stored.items() if not k.startswith("_")}}

    def _new_view_id(self) -> str:
        self._view_seq += 1
        return f"V{self._view_seq:08d}"

    def _api_get_upload_url(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        filename = params.get("filename")
        length = params.get("length")
        if not filename or length is None:
            return {"ok": False, "error": "invalid_arguments"}
        self._file_seq += 1
        file_id = f"F{self._file_seq:08d}"
        self._pending_files[file_id] = {
            "filename": str(filename),
            "length": int(length),
            "alt_txt": params.get("alt_txt"),
            "content": None,
        }
        return {"ok": True, "upload_url": f"{self._origin}/upload/v1/{file_id}", "file_id": file_id}

    def _api_complete_upload(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        entries = parse_json_field(params.get("files"))
        if not isinstance(entries, list) or not entries:
            return {"ok": False, "error": "invalid_arguments"}
        channel_id = params.get("channel_id") or None
        if channel_id is None and params.get("channels"):
            channel_id = str(params["channels"]).split(",")[0]
        if channel_id is not None and not self._channel_exists(self._resolve_channel(channel_id)):
            return {"ok": False, "error": "channel_not_found"}
        pending = [(e, self._pending_files.get(str(e.get("id")))) for e in entries]
        if any(p is None or p["content"] is None for _e, p in pending):
            return {"ok": False, "error": "file_not_found"}
        completed = []
        for entry, info in pending:
            assert info is not None  # checked above; narrows the type
            file_id = str(entry["id"])
            title = entry.get("title") or info["filename"]
            self._pending_files.pop(file_id)
            self.uploads.append(
                {
                    "channel_id": channel_id,
                    "title": title,
                    "filename": info["filename"],
                    "content": info["content"],
                    "initial_comment": params.get("initial_comment"),
                    "thread_ts": params.get("thread_ts"),
                    "file_id": file_id,
                }
            )
            completed.append(
                {
                    "id": file_id,
                    "name": info["filename"],
                    "title": title,
                    "size": len(info["content"]),
                    "channels": [channel_id] if channel_id else [],
                }
            )
        return {"ok": True, "files": completed}

    # Non-API endpoints

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        """Step 2 of files_upload_v2: raw bytes (or a multipart ``file``) POSTed to upload_url."""
        file_id = request.match_info["file_id"]
        if request.content_type == "multipart/form-data":
            form = await request.post()
            data = next((v.file.read() for v in form.values() if isinstance(v, web.FileField)), b"")
        else:
            data = await request.read()
        call = RecordedCall(
            method=UPLOAD_METHOD,
            params={"file_id": file_id},
            status=0,
            at=time.monotonic(),
            files={file_id: data},
        )
        self.calls.append(call)
        fault = self._take_fault(UPLOAD_METHOD, {})
        if fault is not None and fault.kind == "reset":
            return self._drop_connection(request)
        if fault is not None and fault.kind != "timeout":
            response = self._fault_response(fault)
        else:
            info = self._pending_files.get(file_id)
            if info is None:
                response = web.Response(status=404, text="Not Found", content_type="text/plain")
            else:
                info["content"] = data
                # What files.slack.com answers; slack_sdk only checks the status.
                response = web.Response(text=f"OK - {len(data)}", content_type="text/plain")
        call.status = response.status
        if fault is not None and fault.kind == "timeout":
            await self._sleep_unless_stopping(fault.delay)
        return response

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        """A post to a response_url we issued (bolt's ``respond()``), applied like Slack does."""
        ctx = self._response_urls.get(request.match_info["token"])
        if ctx is None:
            return web.Response(status=404, text="invalid_token")
        try:
            data = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(data, dict):
            return web.Response(status=400, text="invalid_payload")
        self.responses.append(data)
        channel = ctx.channel
        msg = self._find_message(channel, ctx.message_ts) if ctx.message_ts else None
        blocks = parse_json_field(data.get("blocks")) if data.get("blocks") is not None else None
        if truthy(data.get("delete_original", False)) and msg is not None:
            self._messages[channel].remove(msg)
            self.deleted_messages.append(msg)
        elif truthy(data.get("replace_original", False)) and msg is not None:
            # replace_original replaces the whole message: omitted blocks are gone.
            msg.text = data.get("text")
            msg.blocks = (
                self._with_block_ids(blocks, f"{msg.ts}:{len(msg.updates)}")
                if blocks is not None
                else None
            )
            msg.updates.append(dict(data))
        elif data.get("response_type") == "in_channel":
            self._post(channel, data.get("text"), blocks, data.get("thread_ts"))
        else:
            self.ephemerals.append(
                {
                    "channel": channel,
                    "user": None,
                    "text": data.get("text"),
                    "blocks": blocks,
                    "via": "response_url",
                }
            )
        return web.json_response({"ok": True})
