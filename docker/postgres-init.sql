-- One server, two databases: gettok's results and Prefect's own state.
CREATE DATABASE gettok;
CREATE DATABASE prefect;
