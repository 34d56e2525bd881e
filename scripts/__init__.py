"""Developer scripts (docs generation, servers, the local topology); no distribution ships them."""
