"""What enterprises, partners and operators send to intake's API: the input models and their validation.

Only intake reads these; what it publishes is the contract (`goglobal_contract`)."""
