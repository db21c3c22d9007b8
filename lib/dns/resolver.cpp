// placeholder: DNS client over c-ares (issue 4)
