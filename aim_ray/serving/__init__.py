"""The Serve application: the app builder, the gateway ingress, the engine rounds of the chat
loop, and the one door to Ray Serve LLM's private code."""
