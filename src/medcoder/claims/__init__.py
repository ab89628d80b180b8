"""Claims: what payers did with the codes (X12 835 remittance advice), read through `x12sdk`, and our own
grouping of the reasons they give (CARC categories), for denial-feedback retraining (docs/DENIALS.md).

Nothing here ships X12-licensed text: CARC and RARC descriptions are loaded from a file the user holds.
"""
