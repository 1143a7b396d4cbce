"""Chinese notification templates, one per (purpose, channel), versioned, and their rendering.

The templates are data (templates.json next to this module), checked when loaded:
every variable a template names must be one its purpose carries
(intents.PURPOSE_VARIABLES), every WeChat field a known type, every SMS provider
known. Rendering records the template's id and version with the result, so the
attempt log says exactly which wording a recipient got.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from notifications.intents import PURPOSE_VARIABLES, Intent, Purpose

CHANNELS: Final = ("wechat", "push", "sms", "inbox")
SMS_PROVIDERS: Final = ("aliyun", "tencent")

# WeChat subscription message field types and their length limits, in characters. A value over
# the limit is refused by WeChat, so it is cut here; time and date fields are not cut: a cut
# date is no date. thing and name end in an ellipsis so the reader sees that something is missing.
WECHAT_LIMITS: Final = {
    "thing": 20,
    "name": 10,
    "character_string": 32,
    "number": 32,
    "letter": 32,
    "phrase": 5,
    "symbol": 5,
    "phone_number": 17,
    "car_number": 8,
}
_WECHAT_UNCUT: Final = ("time", "date", "amount")
_ELLIPSIS_TYPES: Final = ("thing", "name")


class TemplateError(Exception):
    """A template is missing, malformed, or cannot be filled."""


class MissingVariableError(TemplateError):
    def __init__(self, template: str, variable: str) -> None:
        super().__init__(f"template {template} needs the variable {variable!r}, which the intent lacks")
        self.template = template
        self.variable = variable


class SmsProvider(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: str  # Aliyun: SMS_…; Tencent: its numeric template id
    params: dict[str, str]  # in order; Tencent's names are "1", "2", … and only the order counts


class Template(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: int
    title: str = ""
    body: str = ""  # push and inbox: the text; SMS: the wording as registered with the providers
    template_id: str = ""  # WeChat
    page: str = ""  # WeChat: the mini-program page the message opens; may name {case_id}
    fields: dict[str, str] = {}  # WeChat: field (thing1, time2, …) -> text
    providers: dict[str, SmsProvider] = {}  # SMS


class _File(msgspec.Struct, frozen=True):
    templates: dict[Purpose, dict[str, Template]]


@dataclass(frozen=True, slots=True)
class Rendered:
    template: str  # our id: "<purpose>.<channel>"
    version: int
    provider_template: str  # WeChat template id or SMS template code; "" for push and the inbox
    title: str
    body: str  # the full text as the recipient reads it (WeChat: the field values, one a line)
    variables: dict[str, str]  # WeChat fields, or SMS parameters by name; else the intent's variables
    params: tuple[str, ...] = ()  # SMS parameters in order (Tencent takes a list)
    page: str = ""  # WeChat only


def _names(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _texts(t: Template) -> list[str]:
    params = [v for p in t.providers.values() for v in p.params.values()]
    return [t.title, t.body, *t.fields.values(), *params]


def _check(purpose: Purpose, channel: str, t: Template) -> None:
    where = f"{purpose}.{channel}"
    if channel not in CHANNELS:
        raise TemplateError(f"{where}: unknown channel")
    allowed = PURPOSE_VARIABLES[purpose]
    for text in _texts(t):
        if unknown := _names(text) - allowed:
            raise TemplateError(f"{where}: uses {sorted(unknown)}, which {purpose} does not carry")
    if _names(t.page) - {"case_id"}:
        raise TemplateError(f"{where}: a page may name only {{case_id}}")
    if channel == "wechat":
        if not t.template_id or not t.fields:
            raise TemplateError(f"{where}: a WeChat template needs a template id and fields")
        for key in t.fields:
            kind = key.rstrip("0123456789")
            if kind not in WECHAT_LIMITS and kind not in _WECHAT_UNCUT:
                raise TemplateError(f"{where}: unknown WeChat field type {key}")
    elif channel == "sms":
        if set(t.providers) != set(SMS_PROVIDERS):
            raise TemplateError(f"{where}: needs a template for each of {SMS_PROVIDERS}")
        if not t.providers["aliyun"].code.startswith("SMS_"):
            raise TemplateError(f"{where}: an Aliyun template code starts with SMS_")
        tencent = t.providers["tencent"]
        if not tencent.code.isdigit() or list(tencent.params) != [
            str(i + 1) for i in range(len(tencent.params))
        ]:
            raise TemplateError(f"{where}: Tencent takes a numeric template id and parameters 1, 2, …")
    elif not t.title or not t.body:
        raise TemplateError(f"{where}: push and inbox templates need a title and a body")


def load(path: Path) -> dict[tuple[Purpose, str], Template]:
    """Read and check a templates file; raise TemplateError on the first fault."""
    try:
        parsed = msgspec.json.decode(path.read_bytes(), type=_File)
    except msgspec.ValidationError as e:
        raise TemplateError(f"{path.name}: {e}") from e
    table: dict[tuple[Purpose, str], Template] = {}
    for purpose, by_channel in parsed.templates.items():
        for channel, t in by_channel.items():
            _check(purpose, channel, t)
            table[purpose, channel] = t
    return table


TEMPLATES: Final = load(Path(__file__).with_name("templates.json"))


def channels_for(purpose: Purpose) -> tuple[str, ...]:
    """The channels a purpose has a template for, in CHANNELS order."""
    return tuple(c for c in CHANNELS if (purpose, c) in TEMPLATES)


def fit_wechat(field: str, value: str) -> str:
    """Cut a value to its WeChat field's limit, by characters, so no character is ever split."""
    kind = field.rstrip("0123456789")
    limit = WECHAT_LIMITS.get(kind)
    if limit is None or len(value) <= limit:
        return value
    return value[: limit - 1] + "…" if kind in _ELLIPSIS_TYPES else value[:limit]


def render(intent: Intent, channel: str, provider: str | None = None) -> Rendered:
    """The intent in its purpose's template for the channel (and, for SMS, the provider)."""
    template_id = f"{intent.purpose}.{channel}"
    t = TEMPLATES.get((intent.purpose, channel))
    if t is None:
        raise TemplateError(f"no template {template_id}")
    if (channel == "sms") != (provider is not None):
        raise TemplateError(f"{template_id}: an SMS provider is named for SMS, and only for SMS")

    def fill(text: str) -> str:
        for name in _names(text):
            if name not in intent.variables:
                raise MissingVariableError(template_id, name)
        return text.format_map(intent.variables)

    if channel == "wechat":
        fields = {k: fit_wechat(k, fill(v)) for k, v in t.fields.items()}
        page = t.page.format(case_id=intent.case_id or "")
        body = "\n".join(fields.values())
        return Rendered(template_id, t.version, t.template_id, "", body, fields, page=page)
    if channel == "sms":
        assert provider is not None
        chosen = t.providers.get(provider)
        if chosen is None:
            raise TemplateError(f"{template_id}: no template for the SMS provider {provider!r}")
        params = {k: fill(v) for k, v in chosen.params.items()}
        body = fill(t.body)
        return Rendered(template_id, t.version, chosen.code, "", body, params, tuple(params.values()))
    return Rendered(template_id, t.version, "", fill(t.title), fill(t.body), dict(intent.variables))
