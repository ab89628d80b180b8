"""Human review of the coder's suggestions: accounts, decisions, attestation and claim export.

A certified coder opens an encounter the routing sent to review, sees each code's evidence in the note,
accepts, rejects, modifies or adds codes with a reason, and attests before the claim is released. Every
decision is an entry in the audit trail (medcoder.audit), which is the review's only state, and a
coder-correction record in the denial-feedback contract (docs/DENIALS.md), which the next retraining reads.
"""
