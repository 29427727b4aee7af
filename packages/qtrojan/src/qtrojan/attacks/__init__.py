"""Backdoor attacks: the QTrojan circuit backdoor and the DPBA data-poisoning baseline."""
