"""Sync between a person's machines through a git repository they own.

Each database has a machine id and appends its changes, as numbered records, to its own files
(`machines/<machine-id>/<yyyy-mm>.jsonl`) in a clone of the repository; git carries them (pull
--rebase, push) and, since no two machines write the same file, never conflicts. Records of
other machines are applied idempotently by the store (store/journal.py holds the rules).

- records.py   the record format: parse and check one journal line
- files.py     this machine's journal files (append) and the others' (read from a mark)
- crypto.py    optional age encryption of journal blocks (pyrage)
- git.py       the git command line
- engine.py    `sync init`, `sync`, `sync status`
- worker.py    the app's background sync
"""
