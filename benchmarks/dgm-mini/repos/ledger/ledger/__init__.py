"""Plain-text double-entry bookkeeping."""

from ledger.journal import Journal, Posting, Transaction, UnbalancedTransaction
from ledger.money import CurrencyMismatch, Money
from ledger.parser import JournalSyntaxError, parse_journal
from ledger.report import ReportRow, balance_report, balances, format_report

__all__ = [
    "CurrencyMismatch",
    "Journal",
    "JournalSyntaxError",
    "Money",
    "Posting",
    "ReportRow",
    "Transaction",
    "UnbalancedTransaction",
    "balance_report",
    "balances",
    "format_report",
    "parse_journal",
]

__version__ = "0.9.0"
