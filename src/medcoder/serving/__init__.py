"""`medcoder serve`: the documented way to serve a registered model over HTTP.

- `command`: resolve `models:/<name>@<alias>` to one version, download it and check it against the
  seal recorded at registration (`medcoder.registry.seal`) BEFORE any of its code is imported, then
  run the server on that checked copy;
- `app`: the ASGI app the server runs (MLflow's scoring server for the pyfunc, behind the guard);
- `guard`: what a request must be before the model sees it, and what an error response may say.

Why not `mlflow models serve -m models:/...` alone: it downloads and imports the model's code with
no way to check it against anything trusted, answers malformed JSON with the request body quoted
back, prefixes a pyfunc's own error with the request data, returns Python stack traces for other
errors, has no limit on the size of a request, and its request timeout answers 504 while the
work goes on. See docs/SECURITY.md.

Nothing heavy is imported here, so `medcoder --help` stays fast.
"""
