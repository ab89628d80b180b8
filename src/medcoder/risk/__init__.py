"""CMS-HCC risk adjustment of a prediction (`medcoder predict --risk-adjustment`, docs/RISK.md).

`scoring` is the one door to `hccinfhir`, which maps ICD-10-CM codes to HCCs and computes every score (this
package never computes a coefficient); `rules` holds the rules of ours that run before scoring (the BMI rules
of the ICD-10-CM guidelines, HHS-OIG's high-risk HCCs); `section` builds a prediction's `risk_adjustment`.
"""
