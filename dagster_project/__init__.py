"""Push new Telegram-bot subscriber tokens from the CRM warehouse to eSputnik."""
