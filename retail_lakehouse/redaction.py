"""What may leave the pipeline in a message: error text with credentials and card numbers masked.

Error messages end up in the audit log, in alerts and in Dagster's event log. A storage error can
quote a SAS URL or a connection string, a database error a URL with its password, and a parse error
the line it could not read, which may hold a card number.
"""

import re

from retail_lakehouse.bronze.transforms import mask_cards_in_text

# A SAS signature, an account key, a password or client secret parameter, a password in a URL.
_CREDENTIAL = re.compile(r"(?i)(sig=|accountkey=|password=|client_secret=)[^&;\s'\"<]+|(://[^:/@\s]+:)[^@\s]+@")


def redact(text: str) -> str:
    """`text` with anything that looks like a credential replaced by *** and card numbers masked."""
    masked = _CREDENTIAL.sub(lambda m: (m.group(1) or m.group(2)) + "***" + ("@" if m.group(2) else ""), text)
    return mask_cards_in_text(masked)
