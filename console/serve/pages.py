"""The served browser's own pages: the sign-in form and the refusals (HTML, escaped by jinja2)."""

from __future__ import annotations

import jinja2

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)

_PAGE = _ENV.from_string(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · Outreach Console</title>
<style>
  body { background: #0c181f; color: #e8eef2; font: 16px/1.5 system-ui, sans-serif;
         display: flex; justify-content: center; padding-top: 10vh; margin: 0; }
  main { background: #12232d; padding: 2rem 2.5rem; border-radius: 6px; width: 22rem; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; }
  label { display: block; margin-top: 0.8rem; }
  input { width: 100%; box-sizing: border-box; padding: 0.45rem; font-size: 1rem;
          background: #0c181f; color: inherit; border: 1px solid #3a5566; border-radius: 4px; }
  button { margin-top: 1.2rem; padding: 0.55rem 1.4rem; font-size: 1rem; background: #1f6fb2;
           color: white; border: none; border-radius: 4px; cursor: pointer; }
  .message { margin: 0.8rem 0 0; color: #ffb4a8; }
  .hint { color: #9fb3c0; font-size: 0.85rem; }
</style>
</head>
<body>
<main>
<h1>{{ title }}</h1>
{% if message %}<p class="message" id="message" role="alert">{{ message }}</p>{% endif %}
{% if form %}
<form method="post" action="/sign-in" autocomplete="off">
  <label for="username">User name</label>
  <input id="username" name="username" value="{{ username }}" maxlength="64" required
         {% if not username %}autofocus{% endif %}>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" maxlength="256" required
         {% if username %}autofocus{% endif %}>
  <label for="code">One-time code <span class="hint">(only if your account has one)</span></label>
  <input id="code" name="code" inputmode="numeric" maxlength="6" pattern="[0-9]{6}"
         autocomplete="one-time-code">
  <button type="submit" id="sign-in">Sign in</button>
</form>
{% else %}
<p><a href="/" style="color:#8cc8ff">Back</a></p>
{% endif %}
</main>
</body>
</html>
"""
)


def sign_in_page(message: str = "", username: str = "") -> str:
    return _PAGE.render(title="Sign in", message=message, username=username, form=True)


def refusal_page(title: str, message: str) -> str:
    return _PAGE.render(title=title, message=message, username="", form=False)
