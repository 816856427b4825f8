-- POST a Buy form without an attempt nonce, so every request opens a new order.
wrk.method = "POST"
wrk.body = ""
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
