"""JSON Schema `format` values as string-content regex fragments (grammar-engine dialect).

Each fragment matches the characters between the quotes of a JSON string, in their encoded
form, and is a *subset* of what python-jsonschema's format checker accepts: the decoder must
never emit a value that the validator rejects afterwards, while refusing a rare valid value
costs nothing. So the fragments are deliberately narrower than the RFCs where the exact
language would need a large automaton (date-times accept `Z` or a numeric offset, hostnames
are bounded so their total length stays within 253, URIs have no IP-literal hosts, ...).

Fragments only produce printable ASCII (IRIs: also BMP non-ASCII letters), so no character of
a value needs JSON escaping and the encoded text equals the value.

What python-jsonschema really checks here (`Draft202012Validator.FORMAT_CHECKER` with the
`format-nongpl` extras; a checker whose library is missing accepts everything silently):

* its own code: `date` (`date.fromisoformat`), `email` / `idn-email` (only "contains @"),
  `ipv4`, `ipv6` (`ipaddress`), `uuid` (`uuid.UUID`, dashes at 8-13-18-23), `regex`
  (Python `re.compile`), `relative-json-pointer` (with `jsonpointer`);
* rfc3339-validator: `date-time`, `time` (checked as `1970-01-01T<time>`);
* fqdn: `hostname`; idna: `idn-hostname`; rfc3986-validator: `uri`, `uri-reference`;
  rfc3987-syntax: `iri`, `iri-reference`; jsonpointer: `json-pointer`;
  uri-template: `uri-template`; isoduration: `duration`.

All 19 are active in this environment (rfc3987, the GPL alternative, is not installed); the
tests assert that each checker rejects an obviously bad value, so a missing extra shows up.

Compile shape: fragments are meant to sit between quotes (`"<fragment>"`), as the schema
compiler places them. outlines-core also builds the unanchored-search part of its DFA, in
which a match may restart at any byte that can begin the regex; compiled *bare*, the
bounded hostname labels (and the URI-reference alternations) restart at every letter and
the DFA grows exponentially (minutes, gigabytes), while quoted every fragment here compiles
in milliseconds. So check them with `accepts(f'"{frag}"', f'"{text}"')`, not bare.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------
# dates and times (RFC 3339)
# ---------------------------------------------------------------------------------------------

# 0001-9999: year 0 is rejected by both `date.fromisoformat` and rfc3339-validator.
_YEAR = r"(?:[1-9][0-9]{3}|0(?:[1-9][0-9]{2}|0(?:[1-9][0-9]|0[1-9])))"
# Month-day pairs that exist in every year; 29 February is added only for leap years below,
# so no generated date can be 30 February or 31 April.
_MONTH_DAY = (
    r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    r"|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
# Years divisible by 4 but not 100 (last two digits 04..96), or by 400 (0400..9600).
_LEAP_YEAR = (
    r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])"
    r"|(?:[02468][48]|[13579][26]|[2468]0)00)"
)
DATE = f"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
# Seconds 00-59 (rfc3339-validator has no leap seconds); an offset is required by RFC 3339.
_OFFSET = r"(?:Z|[+\-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?" + _OFFSET
DATE_TIME = f"{DATE}T{TIME}"

# ISO 8601 durations as isoduration parses them: weeks alone, or date parts in Y-M-D order
# then an optional time part; at least one component after P and after T, integers only.
_N = r"(?:0|[1-9][0-9]{0,8})"
_DUR_TIME = f"T(?:{_N}H(?:{_N}M)?(?:{_N}S)?|{_N}M(?:{_N}S)?|{_N}S)"
_DUR_DATE = f"(?:{_N}Y(?:{_N}M)?(?:{_N}D)?|{_N}M(?:{_N}D)?|{_N}D)"
DURATION = f"P(?:{_N}W|{_DUR_DATE}(?:{_DUR_TIME})?|{_DUR_TIME})"

# ---------------------------------------------------------------------------------------------
# hosts and addresses
# ---------------------------------------------------------------------------------------------

_ALNUM = "[A-Za-z0-9]"
_LDH = "[A-Za-z0-9-]"
_LABEL_63 = f"{_ALNUM}(?:{_LDH}{{0,61}}{_ALNUM})?"
_LABEL_30 = f"{_ALNUM}(?:{_LDH}{{0,28}}{_ALNUM})?"
# A first label of up to 63 characters, then up to six of up to 30: at most 63 + 6 * 31 = 249
# characters, within the 253 that fqdn and idna allow, without counting the whole name.
HOSTNAME = f"{_LABEL_63}(?:\\.{_LABEL_30}){{0,6}}"


def _idna_label(max_len: int) -> str:
    """A letter-digit-hyphen label of 1..max_len characters that idna also accepts.

    IDNA 2008 rejects hyphens in both the 3rd and 4th position (reserved for `xn--` labels),
    which the plain hostname label allows; so the 3rd and 4th characters are not both `-`.
    """
    return (
        f"{_ALNUM}(?:{_LDH}{{0,2}}{_ALNUM}"
        f"|{_LDH}(?:{_ALNUM}{_LDH}|-{_ALNUM}){_LDH}{{0,{max_len - 5}}}{_ALNUM})?"
    )


IDN_HOSTNAME = f"{_idna_label(63)}(?:\\.{_idna_label(30)}){{0,6}}"

# Dot-atom local part with the WHATWG (HTML) set of characters, `@`, and a domain of two or
# more labels. python-jsonschema only checks for `@`; this is what a mail system takes.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]"
EMAIL = f"{_ATEXT}+(?:\\.{_ATEXT}+)*@{_LABEL_63}(?:\\.{_LABEL_63})+"

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"  # no leading zeros (ipaddress)
IPV4 = f"(?:{_OCTET}\\.){{3}}{_OCTET}"

_H16 = "[0-9A-Fa-f]{1,4}"
_LS32 = f"(?:{_H16}:{_H16}|{IPV4})"


def _ipv6() -> str:
    """RFC 3986's IPv6address: 8 groups, or `::` standing for at least one group."""
    forms = [f"(?:{_H16}:){{6}}{_LS32}", f"::(?:{_H16}:){{5}}{_LS32}"]
    for before, after in ((0, 4), (1, 3), (2, 2), (3, 1), (4, 0)):
        head = _H16 if before == 0 else f"(?:{_H16}:){{0,{before}}}{_H16}"
        tail = f"(?:{_H16}:){{{after}}}" if after > 1 else (f"{_H16}:" if after else "")
        forms.append(f"(?:{head})?::{tail}{_LS32}")
    forms.append(f"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}")
    forms.append(f"(?:(?:{_H16}:){{0,6}}{_H16})?::")
    return "(?:" + "|".join(forms) + ")"


IPV6 = _ipv6()

_HEX = "[0-9A-Fa-f]"
UUID = f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"

# ---------------------------------------------------------------------------------------------
# URIs and IRIs (RFC 3986 / 3987), without IP-literal hosts
# ---------------------------------------------------------------------------------------------

_PCT = "%[0-9A-Fa-f]{2}"
_UCS = r"\x{A0}-\x{D7FF}\x{F900}-\x{FDCF}\x{FDF0}-\x{FFEF}"  # RFC 3987 ucschar (BMP part)


def _uri(iri: bool, reference: bool) -> str:
    """URI (or IRI) per RFC 3986's collected ABNF, optionally or'ed with relative-ref."""
    ucs = _UCS if iri else ""
    unres_sub = f"A-Za-z0-9._~!$&'()*+,;={ucs}\\-"
    reg = f"(?:[{unres_sub}]|{_PCT})"  # reg-name / userinfo-without-colon character
    pchar = f"(?:[{unres_sub}:@]|{_PCT})"
    pchar_nc = f"(?:[{unres_sub}@]|{_PCT})"
    query = f"(?:[{unres_sub}:@/?]|{_PCT})*"
    user = f"(?:[{unres_sub}:]|{_PCT})"
    authority = f"(?:{user}*@)?{reg}*(?::[0-9]*)?"
    abempty = f"(?:/{pchar}*)*"
    absolute = f"/(?:{pchar}+{abempty})?"
    tail = f"(?:\\?{query})?(?:#{query})?"
    hier = f"(?://{authority}{abempty}|{absolute}|{pchar}+{abempty})?"
    uri = f"[A-Za-z][A-Za-z0-9+.\\-]*:{hier}{tail}"
    if not reference:
        return uri
    relative = f"(?://{authority}{abempty}|{absolute}|{pchar_nc}+{abempty})?{tail}"
    return f"(?:{uri}|{relative})"


URI = _uri(iri=False, reference=False)
URI_REFERENCE = _uri(iri=False, reference=True)
IRI = _uri(iri=True, reference=False)
IRI_REFERENCE = _uri(iri=True, reference=True)

# RFC 6570: literals (URI characters and pct-encodings) and expressions `{op var,var:3,var*}`.
_TPL_LITERAL = rf"(?:[A-Za-z0-9._~!$&'()*+,;=:/?#\[\]@\-]|{_PCT})"
_TPL_VARNAME = r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*"
_TPL_VARSPEC = f"{_TPL_VARNAME}(?::[1-9][0-9]{{0,2}}|\\*)?"
URI_TEMPLATE = f"(?:{_TPL_LITERAL}|\\{{[+#./;?&]?{_TPL_VARSPEC}(?:,{_TPL_VARSPEC})*\\}})*"

# ---------------------------------------------------------------------------------------------
# JSON pointers (RFC 6901 and draft-handrews-relative-json-pointer)
# ---------------------------------------------------------------------------------------------

# Reference tokens: any character but `/` and `~` (escaped as ~1 / ~0); characters that JSON
# would have to escape are left out, so the encoded text is the pointer itself.
JSON_POINTER = r'(?:/(?:[^/~"\\\x00-\x1F\x7F]|~[01])*)*'
# python-jsonschema's checker rejects any digit that follows a 0 ("10" passes, "100" and
# "105" do not), so the number is nonzero digits with at most one trailing 0.
RELATIVE_JSON_POINTER = f"(?:0|[1-9]+0?)(?:#|{JSON_POINTER})"

# A conservative slice of regex syntax that both Python `re` and ECMA-262 compile: literals,
# `.`, simple classes, `?*+` quantifiers, one level of groups with alternation, optional
# anchors; no backslashes (they would need JSON escaping and invite bad escapes).
_RX_CHAR = r"[A-Za-z0-9 _,:;!@#%&=<>'/\-]"
_RX_CLASS = r"\[\^?(?:[A-Za-z0-9_ ]|a-z|A-Z|0-9)+\]"
_RX_PIECE = f"(?:{_RX_CHAR}|\\.|{_RX_CLASS})[*+?]?"
_RX_GROUP = f"\\((?:{_RX_PIECE})+(?:\\|(?:{_RX_PIECE})+)*\\)[*+?]?"
REGEX = f"\\^?(?:{_RX_PIECE}|{_RX_GROUP})*\\$?"

FORMAT_PATTERNS: dict[str, str] = {
    "date": DATE,
    "time": TIME,
    "date-time": DATE_TIME,
    "duration": DURATION,
    "email": EMAIL,
    "idn-email": EMAIL,
    "hostname": HOSTNAME,
    "idn-hostname": IDN_HOSTNAME,
    "ipv4": IPV4,
    "ipv6": IPV6,
    "uuid": UUID,
    "uri": URI,
    "uri-reference": URI_REFERENCE,
    "iri": IRI,
    "iri-reference": IRI_REFERENCE,
    "uri-template": URI_TEMPLATE,
    "json-pointer": JSON_POINTER,
    "relative-json-pointer": RELATIVE_JSON_POINTER,
    "regex": REGEX,
}


def format_content_regex(fmt: str) -> str | None:
    """The string-content fragment for JSON Schema format `fmt`; None when it is unknown.

    Unknown formats are not an error: JSON Schema makes `format` an annotation by default,
    so callers fall back to an unconstrained string.
    """
    return FORMAT_PATTERNS.get(fmt)
