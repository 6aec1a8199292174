"""The forms a secret value takes when a program prints it: what :func:`mask_forms` computes.

A value is printed as itself far less often than one would hope. Tools encode it (base64, wrapped
at 64 or 76 columns or any width; percent-encoding in each library's dialect; JSON escaping in each
serializer's dialect), shells re-quote it when they trace a command (``set -x``,
``declare -p``, ``printf %q``), and a multi-line or JSON-document value is printed a line or a
field at a time. Each function here returns the byte strings one such family produces; the
redactor replaces every occurrence of any of them.

Two rules keep the forms from masking ordinary log text:

* *derived pieces* (a line of a multi-line value, a leaf of a JSON document) are masked on their
  own only when :func:`distinctive` says so: long enough, not whitespace or punctuation only, not
  a ``key: value`` line whose value is an ordinary word, number, boolean, version or plain URL
  (``apiVersion: v1``, ``"type": "service_account",``), not a PEM armour line of a public object;
* wrapped base64, whose line breaks can fall anywhere, is found by *anchors* of 16 characters
  (96 bits: a chance match in unrelated text is negligible) and followed across line breaks
  only as far as it spells the value's encoding.

Nothing here prints, logs or puts a value in an exception.
"""

from __future__ import annotations

__all__ = [
    "WRAP_ANCHOR",
    "WRAP_MIN",
    "Base64Texts",
    "base64_forms",
    "base64_texts",
    "distinctive",
    "distinctive_leaf",
    "json_forms",
    "json_leaves",
    "line_forms",
    "percent_forms",
    "rewritten_forms",
    "shell_forms",
    "wrap_sources",
    "wrapped_base64_lines",
]

import binascii
import re
import string
import unicodedata
from typing import Literal, NamedTuple

from . import jsonsafe

#: Base64 fragments cut out of a longer stream must have at least this many characters.
MIN_BASE64_FRAGMENT = 6
#: Characters per anchor of a wrapped base64 text (96 bits: no chance match in other text).
WRAP_ANCHOR = 16
#: Base64 texts at least this long are also found wrapped; a line must hold ``2*WRAP_ANCHOR-1``
#: characters of it (any width from 31 columns: ``base64`` 76, PEM 64, ``fold -w N``).
WRAP_MIN = 2 * WRAP_ANCHOR

_B64_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")


# ---- base64 ---------------------------------------------------------------------------------


def _b64(data: bytes) -> bytes:
    """Standard base64 without a newline (``base64.b64encode`` without its Python wrapper)."""
    return binascii.b2a_base64(data, newline=False)


def _stream_fragments(value: bytes, std: bytes | None = None) -> list[bytes]:
    """Standard base64 of ``value`` and the stable fragments at stream offsets 1 and 2.

    Inside a longer base64 stream the value starts at bit ``8*k`` for ``k`` in 0, 1, 2 (the
    bytes before it, modulo 3). Character ``j`` of the stream covers bits ``[6j, 6j+6)``, so
    only the characters wholly inside the value's bits are the same whatever surrounds it:
    ``j`` from ``ceil(8k/6)`` to ``floor(8(k+n)/6) - 1``. ``std``: the base64 of ``value``, when
    the caller has it already.
    """
    n = len(value)
    if std is None:
        std = _b64(value)
    # The three offsets written out (k = 0, 1, 2: characters from ceil(8k/6)): a loop over them
    # cost a third of this function for 2,000 calls.
    fragments = (
        std[: (8 * n) // 6],
        _b64(b"\0" + value)[2 : (8 + 8 * n) // 6],
        _b64(b"\0\0" + value)[3 : (16 + 8 * n) // 6],
    )
    return [fragment for fragment in fragments if len(fragment) >= MIN_BASE64_FRAGMENT]


class Base64Texts(NamedTuple):
    """The standard base64 of a value and its stable fragments (see :func:`base64_texts`)."""

    #: The standard base64, padded.
    std: bytes
    #: The fragments at stream offsets 0, 1 and 2 that are long enough to mask.
    fragments: list[bytes]


def base64_texts(value: bytes) -> Base64Texts:
    """The base64 texts both :func:`base64_forms` and :func:`wrap_sources` are made of.

    Computed once by a caller that needs both (the mask list: three encodings of every value).
    """
    std = _b64(value)
    return Base64Texts(std, _stream_fragments(value, std))


def base64_forms(value: bytes, texts: Base64Texts | None = None) -> set[bytes]:
    """Standard and URL-safe base64, padded and not, and the fragments inside a longer stream.

    ``texts``: :func:`base64_texts` of ``value``, when the caller has it.
    """
    std, fragments = texts if texts is not None else base64_texts(value)
    url = std.translate(_B64_TO_URLSAFE)
    forms = {std, std.rstrip(b"="), url, url.rstrip(b"=")}
    for fragment in fragments:
        forms.add(fragment)
        forms.add(fragment.translate(_B64_TO_URLSAFE))
    return forms


def wrap_sources(value: bytes, texts: Base64Texts | None = None) -> list[bytes]:
    """The base64 texts of ``value`` that a tool may print wrapped (cut by line breaks).

    The standard base64 and the stable fragments at stream offsets 1 and 2 (the value inside a
    longer encoded document), when at least ``WRAP_MIN`` characters long, each also in the
    URL-safe alphabet when that differs (``basenc --base64url`` wraps at 76 like ``base64``).
    The redactor finds them by anchors and follows each across line breaks
    (:class:`jobsecrets.redact.PatternSet`). ``texts``: :func:`base64_texts` of ``value``, when
    the caller has it.
    """
    std, fragments = texts if texts is not None else base64_texts(value)
    # The fragment at offset 0 is a prefix of std: std's anchors find it. (With fewer than three
    # fragments every one is far shorter than WRAP_MIN.)
    sources = [text for text in (std, *fragments[1:]) if len(text) >= WRAP_MIN]
    # A text of its own, not a translation while following: its anchors must be found too, and
    # a text without "+" or "/" (its translation the same) adds nothing.
    urlsafe = [text.translate(_B64_TO_URLSAFE) for text in sources]
    return sources + [url for url, text in zip(urlsafe, sources, strict=True) if url != text]


def wrapped_base64_lines(value: bytes, widths: tuple[int, ...] = (64, 76)) -> set[bytes]:
    """The lines of the standard and the URL-safe base64 of ``value`` wrapped at ``widths`` (for
    announcements to a platform that masks exact strings only).

    URL-safe lines too, as the redactor follows both (:func:`wrap_sources`; ``basenc
    --base64url`` wraps at 76 like ``base64``): at most twice as many lines (a line without "+"
    or "/" is the same in both alphabets).
    """
    std = _b64(value)
    url = std.translate(_B64_TO_URLSAFE)
    lines: set[bytes] = set()
    for width in widths:
        if len(std) > width:
            for text in (std, url) if url != std else (std,):
                lines.update(text[i : i + width] for i in range(0, len(text), width))
    return {line for line in lines if len(line) >= 8}


# ---- percent-encoding -----------------------------------------------------------------------

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
# (characters left as they are, space as "+"), one per dialect found in real tools.
_PERCENT_DIALECTS: tuple[tuple[frozenset[str], bool], ...] = (
    (_UNRESERVED, False),  # RFC 3986; Python quote(safe=""), Go url.PathEscape minus sub-delims
    (_UNRESERVED | {"/"}, False),  # Python quote()
    (_UNRESERVED, True),  # Python quote_plus(), Go url.QueryEscape
    (frozenset(string.ascii_letters + string.digits + "-_.!~*'()"), False),  # encodeURIComponent
    (frozenset(string.ascii_letters + string.digits + "-_.!~*'();/?:@&=+$,#"), False),  # encodeURI
    (frozenset(string.ascii_letters + string.digits + ".-*_"), True),  # Java URLEncoder
    (_UNRESERVED | set("$&+,;="), False),  # Go url.UserPassword (userinfo)
    (_UNRESERVED | set("$&+,:;=@"), False),  # Go url.PathEscape
)
_PLAIN_URL = re.compile(rb"[A-Za-z0-9._\-]*")
# Hand-built URLs escape only what would break them.
_MINIMAL_ESCAPES = tuple(
    frozenset(chars) for chars in ("%@:/?# ", "%@/?# ", "%@:/", "%@/", "@:", "@")
)


def _percent_table(keep: frozenset[str], plus: bool, upper: bool) -> tuple[bytes, ...]:
    """What one dialect writes for each byte: itself when kept, ``+`` for a space, else ``%XX``."""
    fmt = "%{:02X}" if upper else "%{:02x}"
    table = []
    for byte in range(256):
        char = chr(byte)
        if byte < 0x80 and char in keep:
            table.append(bytes([byte]))
        elif plus and char == " ":
            table.append(b"+")
        else:
            table.append(fmt.format(byte).encode("ascii"))
    return tuple(table)


def _minimal_table(escape: frozenset[str], upper: bool) -> tuple[bytes, ...]:
    """What a hand-built URL writes for each byte: ``%XX`` for the few it escapes, else itself."""
    fmt = "%{:02X}" if upper else "%{:02x}"
    return tuple(
        fmt.format(byte).encode("ascii") if byte < 0x80 and chr(byte) in escape else bytes([byte])
        for byte in range(256)
    )


# Every dialect as a byte -> output table, built once: encoding a value is then one lookup a byte.
_PERCENT_TABLES: tuple[tuple[bytes, ...], ...] = tuple(
    [
        _percent_table(keep, plus, upper)
        for upper in (True, False)
        for keep, plus in _PERCENT_DIALECTS
    ]
    + [_minimal_table(escape, upper) for upper in (True, False) for escape in _MINIMAL_ESCAPES]
)


# For each byte, what every dialect writes for it (in _PERCENT_TABLES order).
_PERCENT_BY_BYTE: tuple[tuple[bytes, ...], ...] = tuple(
    tuple(table[byte] for table in _PERCENT_TABLES) for byte in range(256)
)
_PERCENT, _PLUS = ord("%"), ord("+")


def percent_forms(value: bytes) -> set[bytes]:
    """The value percent-encoded in every common dialect, with upper- and lower-case hex."""
    if _PLAIN_URL.fullmatch(value):
        return {value}  # nothing any dialect escapes (most tokens): the value itself
    # Only the value's few special bytes differ between dialects. Dialects that write them alike
    # write the same form (a dialect's signature: what it writes for each of them), so each
    # distinct signature is encoded once, by replacing those bytes: a handful of C-level
    # replaces (1,000 values: 5.5 ms against 6.2-9.7 for a translate per dialect). "%" first, "+"
    # next: the other bytes' escapes ("%XX", and "+" for a space) must not be escaped again.
    specials = sorted(set(value) - _PLAIN_URL_BYTES, key=lambda b: (b != _PERCENT, b != _PLUS))
    rows = [_PERCENT_BY_BYTE[byte] for byte in specials]
    pieces = [bytes((byte,)) for byte in specials]
    forms = set()
    for signature in dict.fromkeys(zip(*rows, strict=True)):
        form = value
        for piece, escape in zip(pieces, signature, strict=True):
            if escape != piece:
                form = form.replace(piece, escape)
        forms.add(form)
    return forms


_PLAIN_URL_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


# ---- JSON escaping --------------------------------------------------------------------------

_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _unicode_escape(code: int, upper: bool) -> str:
    """``\\uXXXX`` for ``code``, as a UTF-16 surrogate pair above U+FFFF."""
    fmt = "\\u{:04X}" if upper else "\\u{:04x}"
    if code > 0xFFFF:
        code -= 0x10000
        return fmt.format(0xD800 + (code >> 10)) + fmt.format(0xDC00 + (code & 0x3FF))
    return fmt.format(code)


class _JsonDialect:
    """How one serializer writes the inside of a JSON string, as a ``str.translate`` table."""

    __slots__ = ("ascii", "escape", "non_ascii", "upper")

    def __init__(
        self,
        *,
        escape: frozenset[str] = frozenset(),
        non_ascii: bool = False,
        upper: bool = False,
        slash: bool = False,
    ) -> None:
        self.escape = escape
        self.non_ascii = non_ascii
        self.upper = upper
        # A list over all of ASCII (str.translate with a dict raises and swallows a KeyError for
        # every character the dict leaves alone); non-ASCII characters miss it, which is rare.
        table = [chr(code) for code in range(0x80)]
        for code in range(0x80):
            char = chr(code)
            if char in escape or (non_ascii and code > 0x7E):
                table[code] = _unicode_escape(code, upper)
            elif char in _SHORT:
                table[code] = _SHORT[char]
            elif code < 0x20:
                table[code] = _unicode_escape(code, upper)
            elif slash and char == "/":
                table[code] = "\\/"
        #: What the serializer writes for each ASCII character.
        self.ascii = table

    def write(self, text: str, wide: frozenset[str] = frozenset()) -> str:
        """``text`` as the inside of a JSON string in this dialect; ``wide``: its non-ASCII chars."""
        table: list[str] | dict[int, str] = self.ascii
        if wide and (self.non_ascii or self.escape):
            escaped = dict(enumerate(self.ascii))
            for char in wide:
                if self.non_ascii or char in self.escape:
                    escaped[ord(char)] = _unicode_escape(ord(char), self.upper)
            table = escaped
        return text.translate(table)


_HTML = frozenset("<>&")
# Go and Gson also escape the two line separators JavaScript once rejected in strings.
_SEPARATORS = frozenset("\u2028\u2029")
_JSON_DIALECTS: tuple[_JsonDialect, ...] = (
    _JsonDialect(),  # JSON.stringify, serde_json, Python ensure_ascii=False
    _JsonDialect(non_ascii=True),  # Python json.dumps (ensure_ascii)
    _JsonDialect(non_ascii=True, upper=True),  # Jackson ESCAPE_NON_ASCII, many C libraries
    _JsonDialect(escape=_HTML),  # HTML-safe encoders (Jinja's tojson, simplejson)
    _JsonDialect(escape=_HTML | _SEPARATORS),  # Go encoding/json
    _JsonDialect(escape=_HTML | _SEPARATORS | {"=", "'"}),  # Gson (HTML-safe)
    _JsonDialect(escape=_HTML | set("'\"+`"), non_ascii=True, upper=True),  # .NET System.Text.Json
    _JsonDialect(slash=True, non_ascii=True),  # PHP json_encode
    _JsonDialect(slash=True),  # PHP JSON_UNESCAPED_UNICODE
)


_PLAIN_JSON = re.compile(rb"[A-Za-z0-9 !#$%()*,\-.:;?@\[\]^_{|}~]*")


def json_forms(value: bytes) -> set[bytes]:
    """The value as the inside of a JSON string, in the dialect of each common serializer."""
    if _PLAIN_JSON.fullmatch(value):
        return {value}  # nothing any serializer escapes
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        # Not text: it cannot be inside a JSON document as it is.
        return set()
    forms = set()
    wide = frozenset() if text.isascii() else frozenset(c for c in set(text) if ord(c) > 0x7F)
    for dialect in _JSON_DIALECTS:
        forms.add(dialect.write(text, wide).encode("utf-8"))
    return forms


def json_leaves(value: bytes) -> list[tuple[str, bytes]]:
    """``(key, leaf)`` for each string leaf of ``value`` when it is a JSON object or array.

    ``key`` is the name of the member holding the leaf ("" in an array at the top).
    """
    stripped = value.strip()
    if stripped[:1] not in (b"{", b"["):
        return []
    try:
        document = jsonsafe.loads(stripped)
    except ValueError:
        return []
    leaves: list[tuple[str, bytes]] = []
    todo: list[tuple[str, object]] = [("", document)]
    while todo:
        key, node = todo.pop()
        if isinstance(node, dict):
            todo.extend((str(k), v) for k, v in node.items())
        elif isinstance(node, list):
            todo.extend((key, v) for v in node)
        elif isinstance(node, str):
            leaves.append((key, node.encode("utf-8", "surrogatepass")))
    return leaves


_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key|credential|auth|private|cert", re.IGNORECASE)


def distinctive_leaf(key: str, leaf: bytes, min_length: int) -> bool:
    """Whether a leaf of a JSON-document secret is masked on its own.

    Under a key that names a credential (``password``, ``token``, ``private_key``...) any leaf
    of ``min_length`` bytes is; elsewhere only a :func:`distinctive` one that is not an ordinary
    word, host name, URL, version or number (``"type": "service_account"``, ``"token_uri":
    "https://oauth2.googleapis.com/token"`` are in every key of that kind).
    """
    piece = leaf.strip()
    if _SECRET_KEY.search(key) and "uri" not in key.lower() and "url" not in key.lower():
        return len(piece) >= max(min_length, 1) and not piece.isspace()
    if not distinctive(piece, min_length):
        return False
    try:
        return not _ORDINARY_VALUE.match(piece.decode("utf-8"))
    except UnicodeDecodeError:
        return True


# ---- shell re-quoting -----------------------------------------------------------------------

# bash's sh_backslash_quote (printf %q) and the characters that make xtrace quote a word.
_BASH_SPECIAL = frozenset(" \t\n'\"\\|&;()<>!{}*[?]^$`,")
_ANSI_C = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 27: "\\E"}
# Words xtrace leaves unquoted: letters, digits and %+,-./:=@_^~ (and not the empty word).
_SAFE_WORD_RE = re.compile(rb"[A-Za-z0-9%+,\-./:=@_^~]+")


#: How ``$'...'`` writes bytes above 0x7F, which depends on the shell and its locale: as they
#: are, all in octal (bash in the C locale), or in octal only where they are not part of a valid,
#: printable UTF-8 character (bash in a UTF-8 locale: it writes what ``iswprint`` accepts as is).
_NonAscii = Literal["as-is", "octal", "utf-8"]
_NON_ASCII_MODES: tuple[_NonAscii, ...] = ("as-is", "octal", "utf-8")


def _ansi_c_map(octal_non_ascii: bool) -> list[str]:
    """What ``$'...'`` writes for each byte, as a str.translate table over latin-1 text."""
    escapes = [chr(byte) for byte in range(256)]
    for byte in range(256):
        if byte in _ANSI_C:
            escapes[byte] = _ANSI_C[byte]
        elif byte in b"\\'":
            escapes[byte] = "\\" + chr(byte)
        elif byte < 0x20 or byte == 0x7F or (byte > 0x7F and octal_non_ascii):
            escapes[byte] = f"\\{byte:03o}"
    return escapes


_ANSI_C_MAPS = {octal: _ansi_c_map(octal) for octal in (False, True)}
#: The ASCII part only: str.translate leaves the characters past its end as they are.
_ANSI_C_ASCII = _ANSI_C_MAPS[False][:0x80]
_NON_ASCII_CHAR = re.compile(r"[^\x00-\x7f]")
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
#: Categories of the characters glibc's ``iswprint`` rejects in a UTF-8 locale (bash writes
#: their bytes in octal): controls (U+0080-U+009F), the line and paragraph separators, code
#: points not assigned, and the lone surrogates ``surrogateescape`` makes of invalid bytes.
_UNPRINTABLE = frozenset({"Cc", "Zl", "Zp", "Cn", "Cs"})
# printf %q: a backslash before each special character.
_BACKSLASH_MAP = ["\\" + chr(b) if chr(b) in _BASH_SPECIAL else chr(b) for b in range(256)]


def _octal_unprintable(match: re.Match[str]) -> str:
    """A non-ASCII character as bash writes it in a UTF-8 locale: as it is, or its bytes in
    octal when it is invalid (a byte ``surrogateescape`` kept) or not printable."""
    char = match.group()
    if unicodedata.category(char) not in _UNPRINTABLE:
        return char
    return "".join(f"\\{byte:03o}" for byte in char.encode("utf-8", "surrogateescape"))


def _ansi_c(value: bytes, non_ascii: _NonAscii) -> bytes:
    """The inside of bash's ``$'...'`` (``declare -p``, ``printf %q`` of control characters)."""
    if non_ascii != "utf-8" or value.isascii():
        octal = non_ascii == "octal"
        return value.decode("latin-1").translate(_ANSI_C_MAPS[octal]).encode("latin-1")
    # Invalid bytes become lone surrogates (each on its own, as bash reads them one at a time);
    # the ASCII escapes go first, so the octal escapes written after are not escaped again.
    text = value.decode("utf-8", "surrogateescape").translate(_ANSI_C_ASCII)
    return _NON_ASCII_CHAR.sub(_octal_unprintable, text).encode("utf-8")


def _needs_ansi_c(word: bytes, non_ascii: _NonAscii) -> bool:
    """Whether bash writes ``word`` as ``$'...'``: it holds a byte it would write in octal."""
    if _CONTROL.search(word):
        return True
    if word.isascii() or non_ascii == "as-is":
        return False
    if non_ascii == "octal":
        return True
    text = word.decode("utf-8", "surrogateescape")
    return any(unicodedata.category(c) in _UNPRINTABLE for c in _NON_ASCII_CHAR.findall(text))


def _single_quote_words(
    words: list[bytes], quote: bytes, grouped: bool, non_ascii: _NonAscii = "as-is"
) -> bytes:
    """Words joined by spaces, each quoted when it needs it (xtrace of ``$VAR`` unquoted).

    ``non_ascii``: how bash writes bytes above 0x7F (the same for every word of one trace).
    """
    out = []
    for word in words:
        if grouped or non_ascii == "as-is":
            if _SAFE_WORD_RE.fullmatch(word):
                out.append(word)
            elif not grouped and _CONTROL.search(word):
                out.append(b"$'" + _ansi_c(word, "as-is") + b"'")  # bash, zsh
            else:
                out.append(b"'" + _requote(word, quote, grouped) + b"'")
        # bash 5 (print_cmd.c): single quotes around a word with a shell metacharacter, whatever
        # else it holds; else $'...' when a byte needs an escape; else the word as it is.
        elif _BASH_METAS.search(word):
            out.append(b"'" + _requote(word, quote, grouped) + b"'")
        elif _needs_ansi_c(word, non_ascii):
            out.append(b"$'" + _ansi_c(word, non_ascii) + b"'")
        else:
            out.append(word)
    return b" ".join(out)


#: What makes bash's xtrace single-quote a word (sh_contains_shell_metas).
_BASH_METAS = re.compile(rb"""[ \t\n'"\\|&;()<>!{}*\[?\]^$`]|^[~#]|[=:]~""")


def _requote(value: bytes, quote: bytes, grouped: bool) -> bytes:
    """The inside of a single-quoted word: each quote (or run of them) closed and re-opened."""
    if not grouped:
        return value.replace(b"'", quote)
    return re.sub(rb"'+", lambda m: b"'\"" + m.group() + b"\"'", value)


_PLAIN_SHELL = re.compile(rb"[A-Za-z0-9%+\-./:=@_]*")


def shell_forms(value: bytes) -> set[bytes]:
    """How shells print the value when they quote it again.

    * bash and zsh xtrace, ``typeset -p`` in zsh: ``'`` becomes ``'\\''``;
    * dash ``export -p``, busybox ash xtrace: a run of quotes becomes ``'"''"'``;
    * bash ``declare -p``/``export -p``: double quotes with ``\\ " $ ` `` escaped, or ``$'...'``
      when the value has control characters (also what ``printf %q`` prints then), its bytes
      above 0x7F as they are, all in octal (C locale) or in octal where they are not part of a
      printable UTF-8 character (UTF-8 locale);
    * bash ``printf %q``: a backslash before every special character;
    * an unquoted ``$VAR`` in a traced command: the value's words, each quoted on its own.
    """
    if _PLAIN_SHELL.fullmatch(value):
        return {value}  # no shell quotes or escapes anything in it
    # Bytes above 0x7F are written in one of three ways (_NonAscii); an ASCII value has one.
    modes: tuple[_NonAscii, ...] = ("as-is",) if value.isascii() else _NON_ASCII_MODES
    forms = {
        _requote(value, b"'\\''", grouped=False),
        _requote(value, b"'\"'\"'", grouped=True),
        re.sub(rb'([\\"$`])', rb"\\\1", value),
    }
    forms.update(_ansi_c(value, mode) for mode in modes)
    backslashed = value.decode("latin-1").translate(_BACKSLASH_MAP).encode("latin-1")
    # printf %q also escapes a leading # or ~ (they would start a comment or a tilde expansion).
    forms.add(b"\\" + backslashed if value[:1] in (b"#", b"~") else backslashed)
    words = value.split()
    if len(words) > 1 or (words and words[0] != value):
        forms.add(b" ".join(words))
        # bash quotes a word by its own rule (a ^, a leading ~ or #, =~): for an ASCII value
        # too, whose other shells' form ("as-is") leaves such a word bare.
        word_modes = modes if "utf-8" in modes else (*modes, "utf-8")
        forms.update(_single_quote_words(words, b"'\\''", False, mode) for mode in word_modes)
        forms.add(_single_quote_words(words, b"'\"'\"'", grouped=True))
    return forms


# ---- rewritten by another program ----------------------------------------------------------

_C_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)", re.DOTALL)
_C_SIMPLE = {b"n": b"\n", b"t": b"\t", b"r": b"\r", b"a": b"\a", b"b": b"\b", b"f": b"\f"}
_C_SIMPLE.update({b"v": b"\v", b"e": b"\x1b", b"E": b"\x1b", b"\\": b"\\"})


def _interpret_escapes(value: bytes) -> bytes:
    """What ``echo -e`` or ``printf FORMAT`` prints for a value written with backslash escapes."""

    def one(match: re.Match[bytes]) -> bytes:
        body = match.group(1)
        if body[:1] == b"x" and len(body) > 1:
            return bytes([int(body[1:], 16)])
        if body[:1] in b"01234567":
            return bytes([int(body, 8) & 0xFF])
        return _C_SIMPLE.get(body, body)

    return _C_ESCAPE.sub(one, value)


def rewritten_forms(value: bytes, min_length: int = 8) -> set[bytes]:
    """The value as other programs rewrite it on the way to the log.

    * ``docker compose config`` (and Makefiles) print a literal ``$`` doubled;
    * a value with backslash escapes printed by ``echo -e``/``printf FORMAT`` (escapes interpreted)
      or pasted into shell code and ``eval``'d (each backslash removed);
    * a value stored with surrounding quotes, printed by a dotenv or shell parser without them
      (only when what is left is :func:`distinctive` with ``min_length`` bytes: ``"short"`` must
      not mask the word ``short``).
    """
    forms: set[bytes] = set()
    if b"$" in value:
        forms.add(value.replace(b"$", b"$$"))
    if b"\\" in value:
        forms.add(_interpret_escapes(value))
        forms.add(re.sub(rb"\\(.?)", rb"\1", value, flags=re.DOTALL))
    if len(value) >= 2 and value[:1] == value[-1:] and value[:1] in (b'"', b"'"):
        inner = value[1:-1]
        if distinctive(inner.strip(), min_length):
            forms.add(inner)
    return forms


# ---- derived pieces -------------------------------------------------------------------------

# "key: value" / "key = value" / '"key": "value",' with the key and the value as groups.
_KEY_VALUE = re.compile(
    r"""^-?\s*["']?[A-Za-z_][\w.\-/]*["']?\s*[:=]\s*(?P<value>.*?)\s*[,;]?$""", re.DOTALL
)
# "- value": an item of a YAML list.
_LIST_ITEM = re.compile(r"^-\s+(?P<value>.*?)\s*$", re.DOTALL)
_ORDINARY_VALUE = re.compile(
    r"""^(?:
        ["']?[A-Za-z][A-Za-z_\-]*["']?          # a word: Config, service_account, prod, my-proj
      | ["']?[A-Za-z][\w\-]*(?:\.[A-Za-z][\w\-]*)+["']?   # a host name: googleapis.com
      | ["']?(?:[a-z0-9.\-]+/)?v\d+(?:(?:alpha|beta)\d+)?["']?   # a version: v1, apps/v1
      | -?\d+(?:\.\d+)*                           # a number
      | true|false|null|yes|no|~
      | [\[\]{}()|>\-]*                         # nothing, or a block opener
      | ["']?https?://[\w.\-]+(?::\d+)?(?:/[\w.\-/]*)?["']?   # a URL without credentials
    )$""",
    re.VERBOSE | re.IGNORECASE,
)
_PUBLIC_ARMOUR = re.compile(
    r"^-----(BEGIN|END) (CERTIFICATE|PUBLIC KEY|X509 CRL|CERTIFICATE REQUEST)-----$"
)


def distinctive(piece: bytes, min_length: int) -> bool:
    """Whether a derived piece (a line of a value, a JSON leaf) is masked on its own.

    ``piece`` is already trimmed. It must have ``min_length`` bytes, contain a letter or digit,
    and not be structure that occurs in ordinary text of the same kind: a ``key: value`` line
    whose value is an ordinary word, version, number, boolean, URL or block opener (YAML and
    JSON shapes: ``apiVersion: v1``, ``"type": "service_account",``, ``users:``, ``- item``),
    a number or IP address alone, or the armour line of a certificate or public key. (The
    armour line of a *private* key is masked: it occurs only where a private key is printed.)
    """
    if len(piece) < max(min_length, 1):
        return False
    try:
        text = piece.decode("utf-8")
    except UnicodeDecodeError:
        return True  # binary: nothing ordinary about it
    if not any(ch.isalnum() for ch in text):
        return False
    if re.fullmatch(r"[\d.:/\-]+", text):
        return False  # numbers, dates, IP addresses
    if _PUBLIC_ARMOUR.match(text):
        return False
    match = _KEY_VALUE.match(text) or _LIST_ITEM.match(text)
    return not (match and _ORDINARY_VALUE.match(match.group("value")))


def line_forms(value: bytes, min_length: int) -> set[bytes]:
    """The distinctive lines of a multi-line value, as they are and trimmed."""
    forms: set[bytes] = set()
    for line in value.splitlines():
        trimmed = line.strip()
        if distinctive(trimmed, min_length):
            forms.add(trimmed)
            if line != trimmed and distinctive(line, min_length):
                forms.add(line.rstrip(b"\r"))
    return forms
