"""Explicit limits for untrusted input, the same numbers as the Rust core's ``limits``.

Each limit, when hit, is reported as an ``invalid`` finding; none of them stops the
parser early except the input size.
"""

MAX_INPUT_BYTES = 4 * 1024 * 1024
"""Bytes parsed at most; real From fields are under 1 KiB and Postfix's whole header
limit is 100 KiB, so anything near this is an attack. The rest is reported, not parsed."""

MAX_COMMENT_DEPTH = 64
"""Comment nesting reported beyond this depth (nesting is counted, so deeper input
costs no stack; the limit flags it as hostile)."""

MAX_MAILBOXES = 1000
"""Mailboxes returned at most; the rest are checked but not returned."""

MAX_FINDINGS = 1000
"""Findings returned at most; the rest still count in the verdict and syntax."""

MAX_SHADOWS = 1000
"""Shadow addresses returned at most (``too-many-shadows``, at the first one not
returned): a value of encoded-words or of a display name full of addresses can hold one
every few bytes."""

MAX_CHECKED_FIELDS = 100
"""From, Sender, Resent-From and Reply-To fields ``check_message`` parses and returns at
most (``too-many-fields``, at the first one left out)."""

MAX_LINE_OCTETS = 998
"""RFC 5322 §2.1.1: each line MUST be no more than 998 characters, excluding the CRLF."""
